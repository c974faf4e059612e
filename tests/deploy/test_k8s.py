"""deploy/k8s: every manifest validated offline, then the cross-references between them.

Built-in kinds are checked with kubernetes-validate in strict mode (unknown fields are
errors) against the schemas it ships; the KEDA ScaledObject, a CRD it has no schema for,
against tests/deploy/schemas/keda-scaledobject.schema.json, with its HPA `behavior` block
checked against the real autoscaling/v2 schema.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from . import (
    CONTRACT_ENV,
    QUEUE_PROTOCOL_ENV,
    REPO_ROOT,
    code_env_names,
    dockerfile_instructions,
    load_schema,
    load_yaml,
    load_yaml_documents,
)

K8S_DIR = REPO_ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S_DIR / "kustomization.yaml"
NAMESPACE = "imgproc"
# The oldest Kubernetes minor still commonly run, and the newest the validator knows.
K8S_VERSIONS = ("1.29.0", "1.37.0")
PRIORITIES = ("high", "normal", "low")
WORKER_HEALTHCHECK = ["python", "-m", "workers", "healthcheck"]
CLUSTER_SCOPED = {"Namespace"}
CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication")}
# Read by Redis (requirepass) and KEDA, not by the service's code.
REDIS_ONLY_ENV = {"REDIS_PASSWORD"}


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p != KUSTOMIZATION)


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    docs = []
    for path in manifest_files():
        docs.extend(load_yaml_documents(path))
    return docs


def find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def of_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def configmap_env(resources: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """What a container's envFrom ConfigMaps and Secrets (the example's placeholders) give
    it."""
    merged: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            merged.update(find(resources, "ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            merged.update(find(resources, "Secret", source["secretRef"]["name"])["stringData"])
    return merged


def redis_url(resources: list[dict[str, Any]]) -> str:
    url: str = find(resources, "Secret", "imgproc-redis")["stringData"]["REDIS_URL"]
    return url


def is_builtin(resource: dict[str, Any]) -> bool:
    return (resource["apiVersion"], resource["kind"]) not in CRD_KINDS


def scaledobject_errors(document: dict[str, Any]) -> list[str]:
    schema = load_schema("keda-scaledobject.schema.json")
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator_cls(schema).iter_errors(document)
    ]


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_builtin_manifest_validates_strictly(
    resources: list[dict[str, Any]], version: str
) -> None:
    builtin = [r for r in resources if is_builtin(r)]
    assert len(builtin) >= 10
    for resource in builtin:
        kubernetes_validate.validate(resource, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field(resources: list[dict[str, Any]]) -> None:
    # Proves the validator bites: `livenessprobe` is not a container field.
    broken = copy.deepcopy(find(resources, "Deployment", "worker"))
    container = only_container(broken)
    container["livenessprobe"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_only_known_crds_lack_a_builtin_schema(resources: list[dict[str, Any]]) -> None:
    for resource in resources:
        if is_builtin(resource):
            continue
        with pytest.raises(kubernetes_validate.SchemaNotFoundError):
            kubernetes_validate.validate(resource, K8S_VERSIONS[-1], strict=True)


def test_scaledobject_matches_its_schema(resources: list[dict[str, Any]]) -> None:
    scaled = find(resources, "ScaledObject", "worker")
    assert scaledobject_errors(scaled) == []


def test_scaledobject_hpa_behavior_is_a_valid_autoscaling_v2_behavior(
    resources: list[dict[str, Any]],
) -> None:
    scaled = find(resources, "ScaledObject", "worker")
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    as_hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "keda-hpa-worker"},
        "spec": {
            "scaleTargetRef": scaled["spec"]["scaleTargetRef"],
            "maxReplicas": scaled["spec"]["maxReplicaCount"],
            "behavior": behavior,
        },
    }
    kubernetes_validate.validate(as_hpa, K8S_VERSIONS[-1], strict=True)


def test_scaledobject_schema_rejects_what_keda_would_reject(
    resources: list[dict[str, Any]],
) -> None:
    scaled = find(resources, "ScaledObject", "worker")
    numeric = copy.deepcopy(scaled)
    numeric["spec"]["triggers"][0]["metadata"]["targetValue"] = 5  # map[string]string
    no_url = copy.deepcopy(scaled)
    del no_url["spec"]["triggers"][1]["metadata"]["url"]
    misspelt = copy.deepcopy(scaled)
    misspelt["spec"]["maxReplicas"] = misspelt["spec"].pop("maxReplicaCount")
    for broken in (numeric, no_url, misspelt):
        assert scaledobject_errors(broken), broken["spec"]


# --- kustomization and namespaces ----------------------------------------------------


def test_kustomization_lists_every_manifest_exactly_once() -> None:
    kustomization = load_yaml(KUSTOMIZATION)
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"] == NAMESPACE
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.name for p in manifest_files()}


def test_kustomization_image_override_names_the_image_the_pods_use(
    resources: list[dict[str, Any]],
) -> None:
    kustomization = load_yaml(KUSTOMIZATION)
    overridden = {entry["name"] for entry in kustomization.get("images", [])}
    for name in ("api", "worker"):
        image = only_container(find(resources, "Deployment", name))["image"]
        assert image.rsplit(":", 1)[0] in overridden


def test_everything_lives_in_the_imgproc_namespace(resources: list[dict[str, Any]]) -> None:
    find(resources, "Namespace", NAMESPACE)
    for resource in resources:
        if resource["kind"] not in CLUSTER_SCOPED:
            assert resource["metadata"].get("namespace") == NAMESPACE, resource["metadata"]


# --- workloads -----------------------------------------------------------------------


def test_every_container_requests_and_limits_cpu_and_memory(
    resources: list[dict[str, Any]],
) -> None:
    workloads = of_kind(resources, "Deployment") + of_kind(resources, "StatefulSet")
    assert len(workloads) == 4
    for workload in workloads:
        spec = pod_spec(workload)
        for container in spec["containers"] + spec.get("initContainers", []):
            res = container["resources"]
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res[section]), (workload["metadata"], section)


def test_every_container_has_liveness_and_readiness_probes(
    resources: list[dict[str, Any]],
) -> None:
    workloads = of_kind(resources, "Deployment") + of_kind(resources, "StatefulSet")
    for workload in workloads:
        for container in pod_spec(workload)["containers"]:
            assert "livenessProbe" in container, workload["metadata"]["name"]
            assert "readinessProbe" in container, workload["metadata"]["name"]


def test_app_pods_run_as_the_images_non_root_user(resources: list[dict[str, Any]]) -> None:
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    image_user = [a for kw, a in dockerfile_instructions(dockerfile) if kw == "USER"][-1]
    uid = int(image_user.split(":")[0])
    for name in ("api", "worker"):
        security = pod_spec(find(resources, "Deployment", name))["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == uid
        assert security["fsGroup"] == uid  # makes the media volume writable for it


def test_api_probes_ask_the_health_endpoint_with_an_allowed_host(
    resources: list[dict[str, Any]],
) -> None:
    api = only_container(find(resources, "Deployment", "api"))
    port_names = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert port_names["http"] == 8000
    allowed = configmap_env(resources, api)["DJANGO_ALLOWED_HOSTS"].split(",")
    probe = api["readinessProbe"]["httpGet"]
    assert probe["path"] == "/api/health/"
    assert port_names.get(probe["port"], probe["port"]) == 8000
    # Without it the kubelet sends the pod IP as Host and Django answers 400.
    host = {h["name"]: h["value"] for h in probe.get("httpHeaders", [])}.get("Host")
    assert host in allowed


def test_api_liveness_and_startup_do_not_depend_on_any_dependency(
    resources: list[dict[str, Any]],
) -> None:
    # Restarting API pods would not bring a database or Redis back: startup asks whether
    # gunicorn listens, liveness whether Django answers /api/health/live/ (no dependency).
    api = only_container(find(resources, "Deployment", "api"))
    assert api["startupProbe"]["tcpSocket"]["port"] == "http"
    live = api["livenessProbe"]["httpGet"]
    assert live["path"] == "/api/health/live/"
    allowed = configmap_env(resources, api)["DJANGO_ALLOWED_HOSTS"].split(",")
    host = {h["name"]: h["value"] for h in live.get("httpHeaders", [])}.get("Host")
    assert host in allowed


def test_api_runs_the_entrypoint_api_role(resources: list[dict[str, Any]]) -> None:
    api = only_container(find(resources, "Deployment", "api"))
    assert "command" not in api  # keep the image's entrypoint
    assert api["args"] == ["api"]


def test_worker_probes_run_the_workers_healthcheck(resources: list[dict[str, Any]]) -> None:
    worker = only_container(find(resources, "Deployment", "worker"))
    assert worker["args"] == ["python", "-m", "workers"]
    for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert worker[probe_name]["exec"]["command"] == WORKER_HEALTHCHECK, probe_name
    assert configmap_env(resources, worker)["WORKER_HEALTH_FILE"].startswith("/tmp/")
    mounts = {m["mountPath"] for m in worker["volumeMounts"]}
    assert "/tmp" in mounts  # the health file must be writable on a read-only root


def test_worker_gets_longer_to_stop_than_its_shutdown_grace(
    resources: list[dict[str, Any]],
) -> None:
    deployment = find(resources, "Deployment", "worker")
    grace = float(configmap_env(resources, only_container(deployment))["SHUTDOWN_GRACE_SECONDS"])
    assert grace >= 1
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] > grace


def test_worker_id_is_the_pod_name(resources: list[dict[str, Any]]) -> None:
    worker = only_container(find(resources, "Deployment", "worker"))
    env = {e["name"]: e for e in worker["env"]}
    assert env["WORKER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_autoscaled_deployments_leave_the_replica_count_to_the_autoscaler(
    resources: list[dict[str, Any]],
) -> None:
    for name in ("api", "worker"):
        assert "replicas" not in find(resources, "Deployment", name)["spec"], name


def test_selectors_match_their_pod_templates(resources: list[dict[str, Any]]) -> None:
    for workload in of_kind(resources, "Deployment") + of_kind(resources, "StatefulSet"):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_services_select_the_pods_they_front(resources: list[dict[str, Any]]) -> None:
    for service_name, kind, workload_name in (
        ("api", "Deployment", "api"),
        ("redis", "StatefulSet", "redis"),
    ):
        service = find(resources, "Service", service_name)
        workload = find(resources, kind, workload_name)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        container_ports = {p["name"] for c in pod_spec(workload)["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports


def test_referenced_configmaps_secrets_and_claims_exist(resources: list[dict[str, Any]]) -> None:
    for deployment in of_kind(resources, "Deployment"):
        spec = pod_spec(deployment)
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    find(resources, "ConfigMap", source["configMapRef"]["name"])
                if "secretRef" in source:
                    find(resources, "Secret", source["secretRef"]["name"])
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                find(
                    resources, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]
                )


def test_media_claim_is_read_write_many_and_mounted_at_media_root(
    resources: list[dict[str, Any]],
) -> None:
    claim = find(resources, "PersistentVolumeClaim", "imgproc-media")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    for name in ("api", "worker"):
        deployment = find(resources, "Deployment", name)
        container = only_container(deployment)
        volumes = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in pod_spec(deployment)["volumes"]
            if "persistentVolumeClaim" in v
        }
        media_root = configmap_env(resources, container)["MEDIA_ROOT"]
        mounted = {m["mountPath"]: volumes.get(m["name"]) for m in container["volumeMounts"]}
        assert mounted.get(media_root) == "imgproc-media", name


# --- redis ---------------------------------------------------------------------------


def test_redis_is_a_statefulset_with_its_own_claim_behind_a_headless_service(
    resources: list[dict[str, Any]],
) -> None:
    redis = find(resources, "StatefulSet", "redis")
    service = find(resources, "Service", "redis")
    assert service["spec"]["clusterIP"] == "None"
    assert redis["spec"]["serviceName"] == "redis"
    (template,) = redis["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in only_container(redis)["volumeMounts"]}
    assert mounts[template["metadata"]["name"]] == "/data"


def test_redis_keeps_an_append_only_file(resources: list[dict[str, Any]]) -> None:
    args = only_container(find(resources, "StatefulSet", "redis"))["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"


def test_redis_url_names_the_statefulsets_pod_through_the_headless_service(
    resources: list[dict[str, Any]],
) -> None:
    secret = find(resources, "Secret", "imgproc-redis")["stringData"]
    url = redis_url(resources)
    match = re.fullmatch(r"redis://:([^@]+)@(redis-0)\.(redis):(\d+)/\d+", url)
    assert match, url
    assert match.group(1) == secret["REDIS_PASSWORD"]
    match = re.fullmatch(r"redis://:[^@]+@(redis-0)\.(redis):(\d+)/\d+", url)
    assert match, url
    port = int(match.group(3))
    assert port in {p["port"] for p in find(resources, "Service", "redis")["spec"]["ports"]}


# --- autoscaling ---------------------------------------------------------------------


def test_api_autoscales_on_cpu(resources: list[dict[str, Any]]) -> None:
    hpa = find(resources, "HorizontalPodAutoscaler", "api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"


def test_scaledobject_scales_the_worker_deployment_on_the_pending_tasks_of_each_priority(
    resources: list[dict[str, Any]],
) -> None:
    scaled = find(resources, "ScaledObject", "worker")
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert target["name"] == "worker"
    assert target.get("kind", "Deployment") == "Deployment"
    find(resources, "Deployment", target["name"])
    assert spec["minReplicaCount"] == 1
    assert spec["maxReplicaCount"] >= 2
    triggers = spec["triggers"]
    assert {t["type"] for t in triggers} == {"metrics-api"}
    # queue.pending.<priority> is what /api/workers/status/ answers (distributed/status.py)
    assert sorted(t["metadata"]["valueLocation"] for t in triggers) == sorted(
        f"queue.pending.{p}" for p in PRIORITIES)
    for trigger in triggers:
        assert trigger["metadata"]["authMode"] == "bearer"
        assert trigger["authenticationRef"] == {"name": "api-key"}
        assert int(trigger["metadata"]["targetValue"]) >= 1


def test_scaledobject_reads_the_api_service(resources: list[dict[str, Any]]) -> None:
    service = find(resources, "Service", "api")
    ports = {p["port"] for p in service["spec"]["ports"]}
    for trigger in find(resources, "ScaledObject", "worker")["spec"]["triggers"]:
        url = re.fullmatch(r"http://([^:/]+):(\d+)(/.*)", trigger["metadata"]["url"])
        assert url, trigger["metadata"]["url"]
        host, port, path = url.groups()
        # KEDA runs in its own namespace: the address must be fully qualified.
        assert host == f"api.{NAMESPACE}.svc.cluster.local"
        assert int(port) in ports
        assert path == "/api/workers/status/"


def test_keda_authenticates_to_the_api_with_a_key_of_its_own(
    resources: list[dict[str, Any]],
) -> None:
    auth = find(resources, "TriggerAuthentication", "api-key")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "token", "name": "imgproc-keda", "key": "API_KEY"}]
    assert "REPLACE-ME" in find(resources, "Secret", "imgproc-keda")["stringData"]["API_KEY"]


# --- configuration -------------------------------------------------------------------


def test_configmaps_set_only_variables_the_code_reads(resources: list[dict[str, Any]]) -> None:
    names: set[str] = set()
    for configmap in of_kind(resources, "ConfigMap"):
        names.update(configmap["data"])
    names.update(find(resources, "Secret", "imgproc-secrets")["stringData"])
    names.update(set(find(resources, "Secret", "imgproc-redis")["stringData"]) - REDIS_ONLY_ENV)
    assert names <= CONTRACT_ENV, sorted(names - CONTRACT_ENV)
    unread = names - code_env_names()
    assert not unread, f"set but read by no code: {sorted(unread)}"


def test_api_and_workers_see_the_same_queue_protocol_settings(
    resources: list[dict[str, Any]],
) -> None:
    api = configmap_env(resources, only_container(find(resources, "Deployment", "api")))
    worker = configmap_env(resources, only_container(find(resources, "Deployment", "worker")))
    for name in QUEUE_PROTOCOL_ENV:
        assert name in api, name
        assert api[name] == worker.get(name), name


def test_secret_example_is_an_obvious_placeholder(resources: list[dict[str, Any]]) -> None:
    secret = find(resources, "Secret", "imgproc-secrets")
    assert "data" not in secret  # stringData: readable, and clearly not a real value
    assert "REPLACE-ME" in secret["stringData"]["DJANGO_SECRET_KEY"]


def test_worker_environment_parses_into_the_workers_settings(
    resources: list[dict[str, Any]],
) -> None:
    from workers.settings import WorkerSettings

    deployment = find(resources, "Deployment", "worker")
    env = {**configmap_env(resources, only_container(deployment)), "WORKER_ID": "worker-abc12"}
    settings = WorkerSettings.from_env(env)
    assert settings.worker_id == "worker-abc12"
    assert settings.health_file == "/tmp/worker.health"
    assert settings.queue.redis_url.startswith("redis://:REPLACE-ME-")
    assert settings.queue.redis_url.endswith("@redis-0.redis:6379/0")
    assert settings.shutdown_grace_s < pod_spec(deployment)["terminationGracePeriodSeconds"]


# --- Redis's password and network ---------------------------------------------------------


def test_redis_requires_the_password_of_its_secret(resources: list[dict[str, Any]]) -> None:
    container = only_container(find(resources, "StatefulSet", "redis"))
    args = container["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    expected = {"name": "imgproc-redis", "key": "REDIS_PASSWORD"}
    assert refs == {"REDIS_PASSWORD": expected, "REDISCLI_AUTH": expected}
    for name in ("api", "worker"):
        sources = only_container(find(resources, "Deployment", name))["envFrom"]
        assert {"secretRef": {"name": "imgproc-redis"}} in sources, name


def test_only_the_api_and_workers_may_reach_redis(resources: list[dict[str, Any]]) -> None:
    policy = find(resources, "NetworkPolicy", "redis")
    redis_labels = pod_spec_labels(find(resources, "StatefulSet", "redis"))
    assert policy["spec"]["podSelector"]["matchLabels"] == redis_labels
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": pod_spec_labels(find(resources, "Deployment", name))}}
        for name in ("api", "worker")]


def pod_spec_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels
