"""The distributed mode through the HTTP API, with a real Redis (and real workers where the
outcome of a task matters)."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from distributed.jobs import get_job
from distributed.queue import Queue
from imaging.codecs import decode_image
from imaging.pipeline import parse_pipeline, run_pipeline
from imaging.storage import Storage
from tests.support.redis import assert_counts_add_up
from tests.support.workers import wait_until

SEED = {"filters": ["sharpen", "edges"],
        "filter_params": {"sharpen": {"intensity": 3}, "edges": {"threshold1": 50,
                                                                "threshold2": 150}}}
URL = "/api/process-batch/distributed/"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _distributed_settings(settings, queue_config, redis_client):
    settings.DISTRIBUTED = queue_config


def upload(api, data: bytes, name: str = "a.png") -> str:
    response = api.post("/api/images/", {"files": [SimpleUploadedFile(name, data)]},
                        format="multipart")
    assert response.status_code == 201, response.json()
    return response.json()["images"][0]["id"]


def accepted(redis_client, queue_config) -> int:
    return assert_counts_add_up(redis_client, queue_config).get("accepted", 0)


def test_submission_answers_202_and_enqueues_one_task_per_image(
    api, png_bytes, redis_client, queue_config
):
    ids = [upload(api, png_bytes(seed=s)) for s in range(3)]
    response = api.post(URL, {**SEED, "images": ids, "priority": "high"}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and body["total"] == 3 and body["priority"] == "high"
    assert body["status_url"].endswith(f"/api/jobs/{body['id']}/")
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["accepted"] == 3 and stats["pending:high"] == 3
    job = api.get(f"/api/jobs/{body['id']}/").json()
    assert job["mode"] == "distributed" and job["status"] == "queued"
    assert job["progress"]["pending"] == 3
    assert [r["image"] for r in job["results"]] == ids


def test_no_images_named_means_the_sample_set(api, redis_client, queue_config):
    response = api.post(URL, SEED, format="json")
    assert response.status_code == 202
    assert response.json()["total"] == len(Storage(api_media()).sample_ids())
    assert accepted(redis_client, queue_config) == response.json()["total"]


def api_media():
    from django.conf import settings

    return settings.MEDIA_ROOT


@pytest.mark.parametrize("body, code", [
    ({"filters": ["nope"]}, "invalid_pipeline"),
    ({"filters": ["blur"], "filter_params": {"blur": {"radius": -1}}}, "invalid_pipeline"),
    ({**SEED, "priority": "urgent"}, None),
    ({**SEED, "images": ["img_" + "f" * 32]}, "unknown_image"),
    ({**SEED, "quality": 0}, None),
])
def test_invalid_submissions_are_rejected_and_nothing_is_enqueued(
    api, body, code, redis_client, queue_config
):
    response = api.post(URL, body, format="json")
    assert response.status_code == 400, response.json()
    if code:
        assert response.json()["error"] == code
    assert accepted(redis_client, queue_config) == 0


def test_a_bad_upload_rejects_the_batch_and_stores_nothing(
    api, png_bytes, redis_client, queue_config, media_root
):
    files = [SimpleUploadedFile("ok.png", png_bytes()), SimpleUploadedFile("x.gif", b"GIF89a..")]
    response = api.post(URL, {"files": files, "options": '{"filters": ["grayscale"]}'},
                        format="multipart")
    assert response.status_code == 415
    assert accepted(redis_client, queue_config) == 0
    assert not list((media_root / "uploads").glob("img_*")) if (media_root / "uploads").exists() \
        else True


def test_multipart_uploads_are_enqueued(api, png_bytes, redis_client, queue_config):
    files = [SimpleUploadedFile(f"{i}.png", png_bytes(seed=i)) for i in range(2)]
    response = api.post(URL, {"files": files, "options": '{"filters": ["grayscale"]}'},
                        format="multipart")
    assert response.status_code == 202, response.json()
    assert accepted(redis_client, queue_config) == 2


def test_idempotency_key_returns_the_first_job(api, png_bytes, redis_client, queue_config):
    image = upload(api, png_bytes())
    first = api.post(URL, {**SEED, "images": [image]}, format="json",
                     HTTP_IDEMPOTENCY_KEY="order-42")
    again = api.post(URL, {**SEED, "images": [image, image]}, format="json",
                     HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    assert accepted(redis_client, queue_config) == 1


def test_queue_cap_answers_429_with_retry_after(
    api, png_bytes, settings, queue_config, redis_client
):
    settings.DISTRIBUTED = dataclasses.replace(queue_config, max_queued_tasks=3)
    image = upload(api, png_bytes())
    assert api.post(URL, {**SEED, "images": [image] * 2}, format="json").status_code == 202
    response = api.post(URL, {**SEED, "images": [image] * 2}, format="json")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["error"] == "queue_full"
    assert accepted(redis_client, queue_config) == 2


@pytest.mark.parametrize("method, path", [
    ("post", URL), ("get", "/api/workers/status/"), ("get", "/api/dead-letters/"),
    ("get", f"/api/jobs/job_{'0' * 32}/"),
])
def test_unreachable_redis_answers_503_json(api, settings, queue_config, method, path):
    from distributed.embedded import free_port

    settings.DISTRIBUTED = dataclasses.replace(
        queue_config, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = getattr(api, method)(path, SEED if method == "post" else None, format="json")
    assert response.status_code == 503
    assert response.json()["error"] == "redis_unavailable"
    assert "Redis" in response.json()["message"]


def test_no_redis_configured_answers_503(api, settings, queue_config):
    settings.DISTRIBUTED = dataclasses.replace(queue_config, redis_url="")
    response = api.post(URL, SEED, format="json")
    assert response.status_code == 503 and "REDIS_URL" in response.json()["message"]
    health = api.get("/api/health/").json()
    assert health["dependencies"]["redis"]["status"] == "not_configured"


def test_health_reports_redis(api):
    health = api.get("/api/health/")
    assert health.status_code == 200
    assert health.json()["dependencies"]["redis"]["status"] == "ok"


def test_workers_status_lists_workers_queue_and_alerts(api, queue, start_worker):
    start_worker("w1")
    queue.submit(job_id="job_s", priority="low", payloads=[{"kind": "sleep", "seconds": 30}],
                 job_fields={})

    def reported() -> dict | None:
        # a loaded machine may delay a heartbeat past 1.5 intervals (degraded): poll until
        # the worker reports its task with a fresh heartbeat
        body = api.get("/api/workers/status/").json()
        workers = body["workers"]
        ok = workers and workers[0]["current_task"] and workers[0]["status"] == "healthy"
        return body if ok else None

    body = wait_until(reported, 20, message="the worker to report its task")
    [w] = body["workers"]
    assert w["id"] == "w1" and w["current_task"] == "job_s.0"
    for field in ("hostname", "pid", "seconds_since_heartbeat", "tasks_completed",
                  "tasks_failed", "uptime_s", "concurrency", "status_rule"):
        assert field in w
    assert body["queue"]["in_progress"] == 1
    assert "throughput" in body["queue"] and body["alerts"] == []


def test_status_alerts_when_no_worker_is_alive(api, queue):
    queue.submit(job_id="job_a", priority="normal", payloads=[{"kind": "noop"}], job_fields={})
    alerts = api.get("/api/workers/status/").json()["alerts"]
    assert [a["code"] for a in alerts] == ["no_live_worker"]


def test_job_completes_on_a_worker_with_the_same_pixels_as_a_direct_call(
    api, png_bytes, start_worker, media_root
):
    start_worker("w1")
    image = upload(api, png_bytes(width=80, height=60, seed=3))
    body = api.post(URL, {**SEED, "images": [image], "output_format": "png"},
                    format="json").json()
    job = wait_until(lambda: (lambda j: j if j["status"] == "completed" else None)(
        api.get(f"/api/jobs/{body['id']}/").json()), 30, message="the job to complete")
    [result] = job["results"]
    assert result["worker"] == "w1" and result["attempts"] == 1 and result["width"] == 80
    output = api.get(result["output_url"])
    assert output.status_code == 200
    got = decode_image(b"".join(output.streaming_content), max_pixels=10**7)
    expected, _ = run_pipeline(decode_image(png_bytes(width=80, height=60, seed=3),
                                            max_pixels=10**7), parse_pipeline(SEED))
    assert np.array_equal(got, expected)
    archive = api.get(f"/api/jobs/{body['id']}/results.zip")
    names = zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))).namelist()
    assert names == [f"0-{image}.png"]


def test_dead_letter_is_requeued_through_the_api_and_completes(
    api, png_bytes, start_worker, media_root, redis_client, queue_config
):
    # Given a task that dies permanently because its image file vanished
    image = upload(api, png_bytes())
    path = Storage(media_root).image_path(image)
    saved = path.read_bytes()
    path.unlink()
    start_worker("w1")
    body = api.post(URL, {**SEED, "images": [image]}, format="json").json()
    listing = wait_until(lambda: (lambda d: d if d["total"] else None)(
        api.get("/api/dead-letters/").json()), 30, message="a dead letter")
    [item] = listing["items"]
    assert item["job_id"] == body["id"] and item["attempts"] == 1
    assert "error" in item and item["error"]["message"]
    # When the file is back and the dead letter is re-queued through the API
    path.write_bytes(saved)
    response = api.post("/api/dead-letters/", {"action": "requeue", "task_ids": [item["task_id"]]},
                        format="json")
    assert response.json() == {"action": "requeue", "changed": 1}
    # Then the job completes
    wait_until(lambda: api.get(f"/api/jobs/{body['id']}/").json()["status"] == "completed", 30,
               message="the re-queued task to complete")
    assert api.get("/api/dead-letters/").json()["total"] == 0
    assert_counts_add_up(redis_client, queue_config)


def test_dead_letters_can_be_discarded_all_at_once(api, queue, redis_client, queue_config):
    queue.submit(job_id="job_x", priority="normal", payloads=[{"kind": "noop"}] * 2,
                 job_fields={})
    for d in queue.fetch(consumer="c", owner="c/1", count=2):
        queue.fail(d, kind="x", message="boom", permanent=True, retry_in_s=0)
    response = api.post("/api/dead-letters/", {"action": "discard", "all": True}, format="json")
    assert response.json()["changed"] == 2
    assert get_job(redis_client, queue_config, "job_x")["status"] == "cancelled"
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["cancelled"] == 2 and stats["dead"] == 0


@pytest.mark.parametrize("body", [{}, {"action": "requeue"}, {"action": "explode", "all": True},
                                  {"action": "requeue", "all": True, "task_ids": ["a"]}])
def test_dead_letter_actions_are_validated(api, body):
    response = api.post("/api/dead-letters/", body, format="json")
    assert response.status_code == 400 and "error" in response.json()


def test_status_cost_does_not_grow_with_the_number_of_tasks(
    redis_client, queue_config, api, settings
):
    # Given 1,000 tasks, then 100,000: the status call sends the same Redis commands.
    config = dataclasses.replace(queue_config, max_queued_tasks=200_000)
    settings.DISTRIBUTED = config
    queue = Queue(redis_client, config)

    def commands_for_one_status_call() -> int:
        redis_client.config_resetstat()
        assert api.get("/api/workers/status/").status_code == 200
        return int(redis_client.info("stats")["total_commands_processed"])

    queue.submit(job_id="job_small", priority="normal", payloads=[{"kind": "noop"}] * 1000,
                 job_fields={})
    commands_for_one_status_call()  # warm up: connection setup commands are not the point
    few = commands_for_one_status_call()
    for n in range(99):
        queue.submit(job_id=f"job_{n}", priority="low", payloads=[{"kind": "noop"}] * 1000,
                     job_fields={})
    many = commands_for_one_status_call()
    body = api.get("/api/workers/status/").json()
    assert body["queue"]["accepted"] == 100_000
    assert few == many


def test_dashboard_page_polls_the_status_endpoint(api):
    response = api.get("/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '"/api/workers/status/"' in html and "<script>" in html and "cdn" not in html.lower()


def test_redis_restart_mid_job_answers_503_meanwhile_and_loses_nothing(
    api, png_bytes, start_worker, redis_server, redis_client, queue_config
):
    # Given two workers busy on a job submitted through the API
    start_worker("w1")
    start_worker("w2")
    image = upload(api, png_bytes(width=320, height=240))
    body = api.post(URL, {**SEED, "images": [image] * 40}, format="json").json()
    wait_until(lambda: api.get(f"/api/jobs/{body['id']}/").json()["progress"]["completed"] >= 3,
               30, message="some progress")
    # When the Redis server stops, the API answers 503 with a JSON error ...
    redis_server.stop()
    for path in (f"/api/jobs/{body['id']}/", "/api/workers/status/"):
        response = api.get(path)
        assert response.status_code == 503 and response.json()["error"] == "redis_unavailable"
    assert api.post(URL, SEED, format="json").status_code == 503
    assert api.get("/api/health/").json()["status"] == "degraded"
    # ... and once it is back (append-only file on), the job completes with nothing lost
    redis_server.start()
    job = wait_until(lambda: (lambda j: j if j["status"] not in ("queued", "running") else None)(
        api.get(f"/api/jobs/{body['id']}/").json()), 60, message="the job to finish")
    assert job["status"] == "completed" and job["progress"]["completed"] == 40
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["accepted"] == 40 and stats["completed"] == 40


def test_cancel_stops_a_queued_job(api, png_bytes, redis_client, queue_config):
    image = upload(api, png_bytes())
    body = api.post(URL, {**SEED, "images": [image] * 3}, format="json").json()
    response = api.post(f"/api/jobs/{body['id']}/cancel/")
    assert response.status_code == 200
    assert response.json() == {"id": body["id"], "cancelled": 3, "status": "cancelled"}
    job = api.get(f"/api/jobs/{body['id']}/").json()
    assert [r["state"] for r in job["results"]] == ["cancelled"] * 3
    assert assert_counts_add_up(redis_client, queue_config)["cancelled"] == 3


def test_cancel_of_unknown_or_local_jobs_is_refused(api):
    assert api.post("/api/jobs/job_nope/cancel/").status_code == 404
    local = api.post("/api/process-batch/threading/", {"filters": ["grayscale"],
                                                       "images": ["sample-badge"]},
                     format="json").json()
    response = api.post(f"/api/jobs/{local['id']}/cancel/")
    assert response.status_code == 409 and response.json()["error"] == "job_not_cancellable"
