"""The console's endpoints on a real Redis: drain a worker (admin only), the last hour's
history, one worker with its timeline (a tenant sees its own tasks only), and the console's
pages themselves (served without a CDN, GET only)."""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from distributed.registry import Registry, TaskSpan, WorkerInfo
from image_api.auth import create_key

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _distributed_settings(settings, queue_config, redis_client):
    settings.DISTRIBUTED = queue_config


def info(worker_id: str) -> WorkerInfo:
    return WorkerInfo(id=worker_id, hostname="host-1", pid=42, version="0", concurrency=1,
                      filters=("blur",), started_at_ms=int(time.time() * 1000), instance="x")


def keyed(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_drain_answers_202_for_a_live_worker_404_unknown_409_gone(api, redis_client,
                                                                 queue_config):
    registry = Registry(redis_client, queue_config)
    registry.register(info("w1"))
    response = api.post("/api/workers/w1/drain/")
    assert response.status_code == 202
    assert response.json() == {"worker_id": "w1", "draining": True}
    [w] = api.get("/api/workers/status/").json()["workers"]
    assert w["state"] == "draining" and w["draining"] is True
    missing = api.post("/api/workers/nobody/drain/")
    assert missing.status_code == 404 and missing.json()["error"] == "worker_not_found"
    too_long = api.post(f"/api/workers/{'x' * 300}/drain/")
    assert too_long.status_code == 404
    registry.deregister("w1", state="drained")
    gone = api.post("/api/workers/w1/drain/")
    assert gone.status_code == 409 and gone.json()["error"] == "worker_gone"


def test_only_an_admin_may_drain(settings, redis_client, queue_config):
    settings.AUTH_REQUIRED = True
    _, tenant = create_key("tenant A")
    _, admin = create_key("ops", admin=True)
    Registry(redis_client, queue_config).register(info("w1"))
    refused = keyed(tenant).post("/api/workers/w1/drain/")
    assert refused.status_code == 403 and refused.json()["error"] == "admin_required"
    assert redis_client.hget(queue_config.keys.worker("w1"), "drain") is None
    assert APIClient().post("/api/workers/w1/drain/").status_code == 401
    assert keyed(admin).post("/api/workers/w1/drain/").status_code == 202


def test_history_lists_samples_of_the_last_hour(api, queue):
    body = api.get("/api/workers/history/").json()
    assert body["bucket_s"] == 10 and body["window_s"] == 3600
    assert isinstance(body["points"], list)
    assert abs(body["generated_at_ms"] - time.time() * 1000) < 5000


def test_worker_detail_shows_its_timeline_to_whom_it_concerns(settings, redis_client,
                                                            queue_config):
    settings.AUTH_REQUIRED = True
    key_a, tenant_a = create_key("tenant A")
    _, admin = create_key("ops", admin=True)
    registry = Registry(redis_client, queue_config)
    registry.register(info("w1"))
    job = "job_" + "b" * 32
    registry.record_tasks("w1", [
        TaskSpan(task=f"{job}.0", job=job, tenant=key_a.id, started_ms=1, ended_ms=5,
                 outcome="completed"),
        TaskSpan(task=f"{job}.1", job=job, tenant="someone_else", started_ms=5, ended_ms=9,
                 outcome="dead"),
    ])
    mine = keyed(tenant_a).get("/api/workers/w1/").json()
    ops = keyed(admin).get("/api/workers/w1/").json()
    assert [s["task"] for s in mine["recent_tasks"]] == [f"{job}.0"]
    assert [s["outcome"] for s in ops["recent_tasks"]] == ["dead", "completed"]
    assert mine["hostname"] is None and ops["hostname"] == "host-1" and ops["pid"] == 42
    missing = keyed(admin).get("/api/workers/nobody/")
    assert missing.status_code == 404 and missing.json()["error"] == "worker_not_found"


@pytest.mark.parametrize("path", ["/console/", "/console/jobs/", "/console/dead-letters/",
                                  f"/console/jobs/job_{'c' * 32}/", "/console/workers/w1/"])
def test_console_pages_render_offline_and_set_the_csrf_cookie(api, path):
    response = api.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/image_api/console/console.js" in html
    assert "https://" not in html and "http://" not in html
    assert "csrftoken" in response.cookies
    assert api.post(path).status_code == 405
