"""GET /metrics through Django, with a real Redis and real worker processes: the scrape is
parsed with prometheus-client's own parser and its families and values checked against what
the jobs did."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import socket
import time

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient, Client
from prometheus_client.parser import text_string_to_metric_families

from image_api.auth import create_key
from imaging.storage import Storage
from tests.support.tasks import submit_tasks
from tests.support.workers import ROOT, wait_until

pytestmark = pytest.mark.django_db
SEED = {"filters": ["sharpen", "edges"],
        "filter_params": {"sharpen": {"intensity": 3}, "edges": {"threshold1": 50,
                                                                "threshold2": 150}}}


@pytest.fixture(autouse=True)
def _distributed_settings(settings, queue_config, redis_client):
    settings.DISTRIBUTED = queue_config
    settings.METRICS_TOKEN = ""


def scrape(client: Client | None = None, **headers: str) -> dict[str, dict]:
    """{family name: {(sample name, sorted labels): value}} of one scrape."""
    response = (client or Client()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.content.decode())


def parse(text: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for family in text_string_to_metric_families(text):
        samples = out.setdefault(family.name, {})
        samples[("_type", ())] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(families: dict, family: str, sample: str | None = None, **labels: str) -> float:
    return families[family][(sample or family, tuple(sorted(labels.items())))]


def upload(api, data: bytes) -> str:
    response = api.post("/api/images/", {"files": [SimpleUploadedFile("a.png", data)]},
                        format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()["images"][0]["id"]


def finished(api, job_id: str) -> dict | None:
    job = api.get(f"/api/jobs/{job_id}/").json()
    return job if job["status"] in ("completed", "completed_with_errors", "failed") else None


def test_a_job_run_by_a_worker_shows_in_the_counters_and_per_filter_histograms(
    api, png_bytes, start_worker
):
    # Given a worker that ran a 3-image job of two filters
    start_worker("w1")
    image = upload(api, png_bytes(width=64, height=48))
    body = api.post("/api/process-batch/distributed/", {**SEED, "images": [image] * 3},
                    format="json").json()
    wait_until(lambda: finished(api, body["id"]), 60, message="the job to finish")
    # When Prometheus scrapes
    m = scrape()
    # Then the counters are the job's, and each filter ran once per image
    assert value(m, "imgproc_redis_up") == 1
    assert value(m, "imgproc_tasks_accepted", "imgproc_tasks_accepted_total") == 3
    assert value(m, "imgproc_tasks_completed", "imgproc_tasks_completed_total") == 3
    assert m["imgproc_tasks_completed"][("_type", ())] == "counter"
    for name in ("failed", "retried", "reclaimed", "fenced"):
        assert value(m, f"imgproc_tasks_{name}", f"imgproc_tasks_{name}_total") == 0
    for priority in ("high", "normal", "low"):
        assert value(m, "imgproc_queue_depth", priority=priority) == 0
        assert value(m, "imgproc_oldest_pending_task_age_seconds", priority=priority) == 0
    assert value(m, "imgproc_tasks_in_progress") == 0
    assert value(m, "imgproc_dead_letters") == 0
    task = "imgproc_task_duration_seconds"
    assert value(m, task, f"{task}_count") == 3
    assert value(m, task, f"{task}_bucket", le="+Inf") == 3
    assert value(m, task, f"{task}_sum") > 0
    hist = "imgproc_filter_duration_seconds"
    for name in ("sharpen", "edges"):
        assert value(m, hist, f"{hist}_count", filter=name) == 3
        counts = [v for (sample, labels), v in m[hist].items()
                  if sample == f"{hist}_bucket" and ("filter", name) in labels]
        assert counts == sorted(counts) and counts[-1] == 3  # cumulative, +Inf last
    assert {dict(labels)["filter"] for (_, labels) in m[hist] if labels} == {"sharpen", "edges"}
    # The worker is counted by its status, and its heartbeat is fresh
    live = sum(value(m, "imgproc_workers", status=s) for s in ("healthy", "degraded",
                                                                 "unhealthy"))
    assert live == 1 and value(m, "imgproc_workers", status="dead") == 0
    assert value(m, "imgproc_worker_heartbeat_age_seconds", worker="w1") < 10
    # And the HTTP histogram counted the submission by its route pattern, not its path
    http = "imgproc_http_request_duration_seconds"
    assert value(m, http, f"{http}_count", method="POST",
                 route="api/process-batch/distributed/", status="2xx") == 1
    assert value(m, http, f"{http}_count", method="GET", route="api/jobs/<str:job_id>/",
                 status="2xx") >= 1


def test_a_dead_letter_counts_as_a_failed_attempt(api, png_bytes, start_worker, media_root):
    image = upload(api, png_bytes())
    Storage(media_root).image_path(image).unlink()  # a permanent error: the file is gone
    start_worker("w1")
    body = api.post("/api/process-batch/distributed/", {**SEED, "images": [image]},
                    format="json").json()
    wait_until(lambda: finished(api, body["id"]), 60, message="the job to fail")
    m = scrape()
    assert value(m, "imgproc_tasks_failed", "imgproc_tasks_failed_total") == 1
    assert value(m, "imgproc_dead_letters") == 1
    assert value(m, "imgproc_tasks_completed", "imgproc_tasks_completed_total") == 0
    task = "imgproc_task_duration_seconds"
    assert not [k for k in m[task] if k[0] != "_type"]  # only completed tasks are timed


def test_pending_tasks_show_as_queue_depth_and_the_age_of_the_oldest(queue):
    # Given tasks queued with no worker to take them
    submit_tasks(queue, 4, priority="low")
    time.sleep(1.2)
    submit_tasks(queue, 2, priority="high")
    m = scrape()
    assert value(m, "imgproc_queue_depth", priority="low") == 4
    assert value(m, "imgproc_queue_depth", priority="high") == 2
    assert value(m, "imgproc_queue_depth", priority="normal") == 0
    low = value(m, "imgproc_oldest_pending_task_age_seconds", priority="low")
    high = value(m, "imgproc_oldest_pending_task_age_seconds", priority="high")
    assert 1.1 <= low < 30
    assert 0 <= high < low
    assert value(m, "imgproc_oldest_pending_task_age_seconds", priority="normal") == 0
    assert value(m, "imgproc_workers", status="healthy") == 0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_with_redis_unreachable_the_scrape_still_answers(settings, queue_config):
    settings.DISTRIBUTED = dataclasses.replace(
        queue_config, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    Client().get("/api/health/live/")
    m = scrape()
    assert value(m, "imgproc_redis_up") == 0
    assert "imgproc_queue_depth" not in m
    http = "imgproc_http_request_duration_seconds"
    assert value(m, http, f"{http}_count", method="GET", route="api/health/live/",
                 status="2xx") >= 1


def test_requests_served_through_asgi_are_timed_too():
    http = "imgproc_http_request_duration_seconds"
    labels = {"method": "GET", "route": "api/health/live/", "status": "2xx"}

    def count() -> float:
        return scrape()[http].get((f"{http}_count", tuple(sorted(labels.items()))), 0.0)

    before = count()

    async def three_requests() -> list[int]:
        client = AsyncClient()
        return [(await client.get("/api/health/live/")).status_code for _ in range(3)]

    assert asyncio.run(three_requests()) == [200, 200, 200]
    assert count() == before + 3


def test_only_get_and_head(api):
    response = Client().post("/metrics")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    head = Client().head("/metrics")
    assert head.status_code == 200 and head.content == b""


def test_with_auth_required_only_an_admin_key_may_scrape(settings):
    settings.AUTH_REQUIRED = True
    _, tenant = create_key("tenant")
    _, admin = create_key("ops", admin=True)
    anonymous = Client().get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "authentication_required"
    assert Client().get("/metrics", headers={"authorization": "Bearer nope"}).status_code == 401
    refused = Client().get("/metrics", headers={"authorization": f"Bearer {tenant}"})
    assert refused.status_code == 403 and refused.json()["error"] == "admin_required"
    assert value(scrape(authorization=f"Bearer {admin}"), "imgproc_redis_up") == 1


def test_a_metrics_token_is_a_read_only_credential_for_prometheus(settings):
    # Given a METRICS_TOKEN, even with keys optional
    settings.METRICS_TOKEN = "scrape-" + "x" * 32
    assert value(scrape(authorization=f"Bearer {settings.METRICS_TOKEN}"),
                 "imgproc_redis_up") == 1
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", headers={"authorization": "Bearer scrape-wrong"}
                        ).status_code == 401
    # An admin key still works, and the token is no API key
    _, admin = create_key("ops", admin=True)
    assert value(scrape(authorization=f"Bearer {admin}"), "imgproc_redis_up") == 1
    settings.AUTH_REQUIRED = True
    denied = Client().get("/api/jobs/", headers={"authorization":
                                                 f"Bearer {settings.METRICS_TOKEN}"})
    assert denied.status_code == 401


def expressions(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in expressions(value)]
    if isinstance(node, list):
        return [e for item in node for e in expressions(item)]
    return []


def test_the_dashboard_and_the_alerts_name_only_metrics_the_scrape_exposes(
    api, png_bytes, start_worker
):
    # Given a scrape with every family filled in (a job ran, a request was timed)
    start_worker("w1")
    image = upload(api, png_bytes())
    body = api.post("/api/process-batch/distributed/", {**SEED, "images": [image]},
                    format="json").json()
    wait_until(lambda: finished(api, body["id"]), 60, message="the job to finish")
    exposed = {sample for family in scrape().values() for sample, _ in family
               if sample != "_type"}
    # When the Grafana dashboard and the alert rules are read
    dashboard = json.loads((ROOT / "deploy/grafana/imgproc-dashboard.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    for source, exprs in (("dashboard", expressions(panels)), ("alerts", expressions(rules))):
        named = {n for e in exprs for n in re.findall(r"\bimgproc_[a-z0-9_]+", e)}
        # Then every metric they name is in the scrape
        assert named and named <= exposed, (source, sorted(named - exposed))
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("queue depth", "throughput", "failures", "filter", "workers", "latency"):
        assert topic in titles
    assert all(p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
               for p in panels)
