"""deploy/k8s with more than one API pod: every pod that serves /api/jobs/ sees the same jobs.

Threading and multiprocessing jobs live in the Django database and uploads and outputs in
MEDIA_ROOT, so with N API pods behind one Service each of them must use the same database
and the same files, or a job created through one pod is a 404 through the next. The
manifests are rendered as `kubectl apply -k deploy/k8s` would (every resource that
kustomization.yaml lists, its namespace and image overrides), then each API workload's
effective environment and volumes are checked: DATABASE_URL from the shared Secret naming
the PostgreSQL Service in front of a StatefulSet with its own claim, never SQLite, and
MEDIA_ROOT on the ReadWriteMany claim.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import dj_database_url
import pytest

from . import REPO_ROOT, load_yaml, load_yaml_documents

K8S_DIR = REPO_ROOT / "deploy" / "k8s"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
CLUSTER_SCOPED = {"Namespace"}
APP_IMAGE = "imgproc"
SHARED_SECRET = "imgproc-secrets"
# What the small renderer below implements; anything else in kustomization.yaml fails the
# render rather than be ignored.
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "resources", "images"}


# --- rendering ------------------------------------------------------------------------------


def pod_templates(resource: dict[str, Any]) -> list[dict[str, Any]]:
    if resource["kind"] in WORKLOAD_KINDS:
        return [resource["spec"]["template"]]
    return []


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_spec.get("initContainers", [])) + list(pod_spec["containers"])


def render(directory: Path = K8S_DIR) -> list[dict[str, Any]]:
    """The resources `kubectl apply -k directory` would apply."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    unknown = set(kustomization) - KUSTOMIZATION_KEYS
    assert not unknown, f"the renderer does not implement {sorted(unknown)}"
    resources = [doc for name in kustomization["resources"]
                 for doc in load_yaml_documents(directory / name)]
    namespace = kustomization.get("namespace")
    overrides = {entry["name"]: entry for entry in kustomization.get("images", [])}
    for resource in resources:
        if namespace and resource["kind"] not in CLUSTER_SCOPED:
            resource["metadata"]["namespace"] = namespace
        for template in pod_templates(resource):
            for container in containers(template["spec"]):
                name, _, tag = container["image"].partition(":")
                if name in overrides:
                    entry = overrides[name]
                    container["image"] = f"{entry.get('newName', name)}:{entry.get('newTag', tag)}"
    return resources


def find(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    for resource in resources:
        if resource["kind"] == kind and resource["metadata"]["name"] == name:
            return resource
    return None


# --- what a pod sees ------------------------------------------------------------------------


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    values.update(secret.get("stringData", {}))
    return values


def effective_env(resources: list[dict[str, Any]],
                  container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """name -> (value, "Kind/name" it came from), by Kubernetes' rules: envFrom sources in
    order (a later one wins), then `env` over all of them."""
    env: dict[str, tuple[str, str]] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            configmap = find(resources, "ConfigMap", name)
            assert configmap, f"ConfigMap {name} missing"
            env.update({k: (v, f"ConfigMap/{name}") for k, v in configmap["data"].items()})
        if "secretRef" in source:
            name = source["secretRef"]["name"]
            secret = find(resources, "Secret", name)
            assert secret, f"Secret {name} missing"
            env.update({k: (v, f"Secret/{name}") for k, v in secret_values(secret).items()})
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = (entry["value"], "env")
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["secretKeyRef"]
            secret = find(resources, "Secret", ref["name"])
            assert secret, f"Secret {ref['name']} missing"
            env[entry["name"]] = (secret_values(secret)[ref["key"]], f"Secret/{ref['name']}")
        else:
            env[entry["name"]] = ("", "valueFrom")
    return env


def serves_the_api(container: dict[str, Any]) -> bool:
    """The app image in its api role (docker/entrypoint.sh; also the image's default CMD)."""
    if container["image"].split(":")[0].rsplit("/", 1)[-1] != APP_IMAGE:
        return False
    argv = list(container.get("command", [])) + list(container.get("args", []))
    return argv in ([], ["api"]) or any("gunicorn" in word for word in argv)


def api_workloads(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources for t in pod_templates(r)
            if any(serves_the_api(c) for c in t["spec"]["containers"])]


def max_replicas(resources: list[dict[str, Any]], workload: dict[str, Any]) -> int:
    """The most pods the workload can run: an autoscaler's maximum, else its replicas."""
    for hpa in (r for r in resources if r["kind"] == "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if (target["kind"], target["name"]) == (workload["kind"], workload["metadata"]["name"]):
            return int(hpa["spec"]["maxReplicas"])
    return int(workload["spec"].get("replicas", 1))


def selects(service: dict[str, Any], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"].get("labels", {})
    selector = service["spec"].get("selector") or {}
    return bool(selector) and selector.items() <= labels.items()


def service_host_names(service: dict[str, Any]) -> set[str]:
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    return {name, f"{name}.{namespace}", f"{name}.{namespace}.svc",
            f"{name}.{namespace}.svc.cluster.local"}


def database_problems(resources: list[dict[str, Any]], url: str) -> list[str]:
    """Why ``url`` is not the PostgreSQL these manifests run (empty when it is)."""
    db = dj_database_url.parse(url)
    if db["ENGINE"] != "django.db.backends.postgresql":
        return [f"DATABASE_URL is {db['ENGINE']}, not PostgreSQL"]
    services = [s for s in resources if s["kind"] == "Service"
                and db["HOST"] in service_host_names(s)]
    if len(services) != 1:
        return [f"DATABASE_URL's host {db['HOST']!r} is no Service of these manifests"]
    (service,) = services
    backends = [w for w in resources if w["kind"] == "StatefulSet" and selects(service, w)]
    if len(backends) != 1:
        return [f"Service {service['metadata']['name']} fronts no single StatefulSet"]
    (statefulset,) = backends
    problems = []
    ports = {p["port"]: p.get("targetPort", p["port"]) for p in service["spec"]["ports"]}
    if int(db["PORT"] or 5432) not in ports:
        problems.append(f"DATABASE_URL's port {db['PORT']} is not a port of the Service")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    if not container["image"].startswith("postgres:"):
        problems.append(f"the StatefulSet runs {container['image']}, not PostgreSQL")
    claims = {t["metadata"]["name"] for t in statefulset["spec"].get("volumeClaimTemplates", [])}
    env = effective_env(resources, container)
    pgdata = env.get("PGDATA", ("/var/lib/postgresql/data", ""))[0]
    mounted = [m for m in container["volumeMounts"]
               if m["name"] in claims and pgdata.startswith(m["mountPath"])]
    if not mounted:
        problems.append("PostgreSQL's data directory is on no claim of its own")
    wanted = {"POSTGRES_USER": db["USER"], "POSTGRES_PASSWORD": db["PASSWORD"],
              "POSTGRES_DB": db["NAME"]}
    for name, value in wanted.items():
        if env.get(name, ("", ""))[0] != value:
            problems.append(f"DATABASE_URL disagrees with the StatefulSet's {name}")
    return problems


def media_problems(resources: list[dict[str, Any]], workload: dict[str, Any],
                   container: dict[str, Any], media_root: str) -> list[str]:
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"].get("volumes", [])}
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == media_root]
    if len(mounts) != 1:
        return [f"nothing is mounted at MEDIA_ROOT {media_root}"]
    volume = volumes[mounts[0]["name"]]
    if "persistentVolumeClaim" not in volume:
        return [f"MEDIA_ROOT is a {sorted(set(volume) - {'name'})} volume, not a shared claim"]
    claim = find(resources, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    if claim is None or "ReadWriteMany" not in claim["spec"]["accessModes"]:
        return ["MEDIA_ROOT's claim is not ReadWriteMany"]
    return []


def shared_state_problems(resources: list[dict[str, Any]]) -> list[str]:
    """Everything that would let two pods serving /api/jobs/ see different jobs or files."""
    problems = []
    workloads = api_workloads(resources)
    if not workloads:
        return ["no workload serves the API"]
    urls = set()
    for workload in workloads:
        where = f"{workload['kind']}/{workload['metadata']['name']}"
        spec = workload["spec"]["template"]["spec"]
        for container in (c for c in spec["containers"] if serves_the_api(c)):
            env = effective_env(resources, container)
            url, source = env.get("DATABASE_URL", ("", "nowhere"))
            if source != f"Secret/{SHARED_SECRET}":
                problems.append(f"{where}: DATABASE_URL comes from {source}, "
                                f"not Secret/{SHARED_SECRET}")
                continue
            urls.add(url)
            problems += [f"{where}: {p}" for p in database_problems(resources, url)]
            media_root = env.get("MEDIA_ROOT", ("", ""))[0]
            problems += [f"{where}: {p}"
                         for p in media_problems(resources, workload, container, media_root)]
    if len(urls) > 1:
        problems.append(f"API workloads use different databases: {sorted(urls)}")
    return problems


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture
def rendered() -> list[dict[str, Any]]:
    return render()


def test_the_api_runs_more_than_one_pod(rendered: list[dict[str, Any]]) -> None:
    (workload,) = api_workloads(rendered)
    assert (workload["kind"], workload["metadata"]["name"]) == ("Deployment", "api")
    assert max_replicas(rendered, workload) > 1


def test_every_api_pod_uses_the_same_postgresql_and_the_shared_media_claim(
    rendered: list[dict[str, Any]],
) -> None:
    assert shared_state_problems(rendered) == []


def test_the_same_holds_at_any_fixed_replica_count(rendered: list[dict[str, Any]]) -> None:
    without_hpa = [r for r in rendered if r["kind"] != "HorizontalPodAutoscaler"]
    (api,) = api_workloads(without_hpa)
    for replicas in (1, 2, 7):
        api["spec"]["replicas"] = replicas
        assert max_replicas(without_hpa, api) == replicas
        assert shared_state_problems(without_hpa) == []


def test_render_applies_the_namespace_and_image_override(rendered: list[dict[str, Any]]) -> None:
    kustomization = load_yaml(K8S_DIR / "kustomization.yaml")
    (override,) = kustomization["images"]
    for resource in rendered:
        if resource["kind"] not in CLUSTER_SCOPED:
            assert resource["metadata"]["namespace"] == kustomization["namespace"]
    (api,) = api_workloads(rendered)
    for container in containers(api["spec"]["template"]["spec"]):
        assert container["image"] == f"{override['name']}:{override['newTag']}"


def test_postgresql_has_its_own_claim_and_probes(rendered: list[dict[str, Any]]) -> None:
    postgres = find(rendered, "StatefulSet", "postgres")
    assert postgres is not None
    (template,) = postgres["spec"]["volumeClaimTemplates"]
    assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
    (container,) = postgres["spec"]["template"]["spec"]["containers"]
    assert "pg_isready" in " ".join(container["readinessProbe"]["exec"]["command"])
    assert container["livenessProbe"]["tcpSocket"]["port"] == "postgres"


def test_api_waits_for_the_database_before_migrating(rendered: list[dict[str, Any]]) -> None:
    (api,) = api_workloads(rendered)
    (init,) = api["spec"]["template"]["spec"]["initContainers"]
    (main,) = api["spec"]["template"]["spec"]["containers"]
    assert init["image"] == main["image"]
    assert "showmigrations" in " ".join(init["args"])  # connects; `check --database` does not
    assert effective_env(rendered, init)["DATABASE_URL"] == effective_env(rendered, main)[
        "DATABASE_URL"]


def test_the_example_secrets_are_placeholders_that_agree(rendered: list[dict[str, Any]]) -> None:
    shared = find(rendered, "Secret", SHARED_SECRET)
    postgres = find(rendered, "Secret", "imgproc-postgres")
    assert shared is not None and postgres is not None
    password = secret_values(postgres)["POSTGRES_PASSWORD"]
    assert "REPLACE-ME" in password
    assert dj_database_url.parse(secret_values(shared)["DATABASE_URL"])["PASSWORD"] == password


# --- the check bites ------------------------------------------------------------------------


def broken(rendered: list[dict[str, Any]], how: str) -> list[dict[str, Any]]:
    resources = copy.deepcopy(rendered)
    (api,) = api_workloads(resources)
    spec = api["spec"]["template"]["spec"]
    shared = find(resources, "Secret", SHARED_SECRET)
    assert shared is not None
    if how == "no DATABASE_URL":
        del shared["stringData"]["DATABASE_URL"]
    elif how == "sqlite":
        shared["stringData"]["DATABASE_URL"] = "sqlite:////data/var/db.sqlite3"
    elif how == "configmap overrides":
        spec["containers"][0]["envFrom"].append({"configMapRef": {"name": "local-db"}})
        resources.append({"kind": "ConfigMap", "metadata": {"name": "local-db"},
                          "data": {"DATABASE_URL": "postgres://x@postgres:5432/imgproc"}})
    elif how == "unknown host":
        shared["stringData"]["DATABASE_URL"] = "postgres://imgproc:p@db.example:5432/imgproc"
    elif how == "emptyDir media":
        for volume in spec["volumes"]:
            if volume["name"] == "media":
                volume.pop("persistentVolumeClaim")
                volume["emptyDir"] = {}
    elif how == "read-write-once media":
        claim = find(resources, "PersistentVolumeClaim", "imgproc-media")
        assert claim is not None
        claim["spec"]["accessModes"] = ["ReadWriteOnce"]
    elif how == "postgres without a claim":
        postgres = find(resources, "StatefulSet", "postgres")
        assert postgres is not None
        del postgres["spec"]["volumeClaimTemplates"]
    return resources


@pytest.mark.parametrize("how", [
    "no DATABASE_URL", "sqlite", "configmap overrides", "unknown host", "emptyDir media",
    "read-write-once media", "postgres without a claim",
])
def test_the_check_finds_each_way_pods_would_stop_sharing(
    rendered: list[dict[str, Any]], how: str
) -> None:
    assert shared_state_problems(broken(rendered, how)), how
