"""Variable names across the deployment files, the tools and the test helpers: renamed
variables keep working under their old names, but nothing of ours may still use one."""

from __future__ import annotations

import re

from common import __version__

from . import (
    REPO_ROOT,
    deployment_paths,
    deprecated_env_names,
    load_yaml,
    load_yaml_documents,
)

K8S_DIR = REPO_ROOT / "deploy" / "k8s"


def test_the_declarations_name_the_renamed_variables() -> None:
    assert {
        "HEARTBEAT_INTERVAL",
        "RETRY_BACKOFF_BASE",
        "RETRY_BACKOFF_MAX",
        "DEAD_WORKER_RETENTION",
    } <= deprecated_env_names()


def test_no_deployment_file_tool_or_test_helper_uses_a_deprecated_name() -> None:
    pattern = re.compile(rf"\b({'|'.join(sorted(deprecated_env_names()))})\b")
    found = {
        str(path.relative_to(REPO_ROOT)): sorted(set(pattern.findall(path.read_text("utf-8"))))
        for path in deployment_paths()
    }
    assert {path: names for path, names in found.items() if names} == {}


def test_the_scan_covers_compose_kubernetes_make_and_the_worker_fixture() -> None:
    scanned = {str(path.relative_to(REPO_ROOT)) for path in deployment_paths()}
    assert {
        "docker-compose.yml",
        "deploy/k8s/configmap.yaml",
        "Makefile",
        "tests/support/workers.py",
        "bench/bench_distributed.py",
    } <= scanned


def test_compose_and_kubernetes_log_in_the_default_json_format() -> None:
    compose = load_yaml(REPO_ROOT / "docker-compose.yml")
    assert compose["x-app-env"]["LOG_FORMAT"] == "${LOG_FORMAT:-json}"
    configmaps = load_yaml_documents(K8S_DIR / "configmap.yaml")
    common = next(c for c in configmaps if c["metadata"]["name"] == "imgproc-common")
    assert common["data"]["LOG_FORMAT"] == "json"


def test_kubernetes_runs_the_image_of_the_service_version() -> None:
    assert load_yaml(K8S_DIR / "kustomization.yaml")["images"] == [
        {"name": "imgproc", "newTag": __version__}
    ]
    for name in ("api.yaml", "worker.yaml"):
        [deployment] = [d for d in load_yaml_documents(K8S_DIR / name) if d["kind"] == "Deployment"]
        images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
        assert images == {f"imgproc:{__version__}"}, name
