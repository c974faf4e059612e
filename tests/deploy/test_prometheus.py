"""The Prometheus files: alert rules checked and unit-tested with Debian's promtool (package
``prometheus``, installed by ``make test-deps``), the example scrape configurations, and the
Kubernetes annotations they rely on. (That the rules and the Grafana dashboard name only
metrics the API exposes is checked against a real scrape: tests/api/test_metrics.py.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import REPO_ROOT

PROMETHEUS = REPO_ROOT / "deploy" / "prometheus"
UNIT_TESTS = Path(__file__).resolve().parent / "prometheus" / "alerts_test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make test-deps` installs Debian's prometheus package"
    return found


def run(promtool: str, *args: str, cwd: Path) -> str:
    done = subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_alert_rules_pass_promtool_check_rules(promtool: str) -> None:
    out = run(promtool, "check", "rules", str(PROMETHEUS / "alerts.yml"), cwd=REPO_ROOT)
    assert "SUCCESS: 10 rules found" in out


def test_each_alert_fires_on_its_series_and_not_before(promtool: str, tmp_path: Path) -> None:
    # The expressions alone: annotations (checked above) would have to match word for word.
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    shutil.copy(UNIT_TESTS, tmp_path / "alerts_test.yml")
    out = run(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert "SUCCESS" in out
    tested = {case["alertname"] for test in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
              for case in test["alert_rule_test"]}
    defined = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert defined - tested == {"ImgprocApiSlow"}  # a quantile over live traffic only


def test_the_compose_scrape_config_passes_promtool_check_config(
    promtool: str, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("example")
    text = (PROMETHEUS / "prometheus.yml").read_text()
    assert "/etc/prometheus/imgproc-metrics-token" in text
    (tmp_path / "prometheus.yml").write_text(
        text.replace("/etc/prometheus/imgproc-metrics-token", str(token)))
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    out = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert "is valid prometheus config file syntax" in out
    config = yaml.safe_load(text)
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": ["api:8000"]}]
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    allowed = compose["services"]["api"]["environment"]["DJANGO_ALLOWED_HOSTS"].split(",")
    assert "api" in allowed  # the Host header Prometheus sends


def _api(resources: list[dict[str, Any]]) -> dict[str, Any]:
    [api] = [r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == "api"]
    return api


def test_the_kubernetes_scrape_config_finds_the_annotated_api_pods() -> None:
    # Debian's promtool is built without Kubernetes discovery: checked by structure here.
    config = yaml.safe_load((PROMETHEUS / "prometheus-kubernetes.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    [job] = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["imgproc"]}}]
    assert job["authorization"]["type"] == "Bearer"
    keep = job["relabel_configs"][0]
    assert keep == {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                    "action": "keep", "regex": "true"}
    resources = list(yaml.safe_load_all((REPO_ROOT / "deploy/k8s/api.yaml").read_text()))
    template = _api(resources)["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "8000",
        "prometheus.io/path": "/metrics"}
    [container] = template["spec"]["containers"]
    assert {"name": "http", "containerPort": 8000} in container["ports"]
    env = {e["name"]: e for e in container["env"]}
    # Prometheus sends the pod IP as Host: the pod allows it, after the ConfigMap's names
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["DJANGO_ALLOWED_HOSTS"]["value"] == "$(DJANGO_ALLOWED_HOSTS),$(POD_IP)"
    names = [e["name"] for e in container["env"]]
    assert names.index("POD_IP") < names.index("DJANGO_ALLOWED_HOSTS")
    # The multiprocess directory is on the pod's own writable emptyDir
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"]["value"].startswith("/tmp/")
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
