"""The distributed mode through the HTTP API, with a real Redis (and real workers where the
outcome of a task matters)."""

from __future__ import annotations

import dataclasses
import io
import signal
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from distributed.ids import new_job_id
from distributed.jobs import get_job
from distributed.messages import TaskMessage, TaskResult
from distributed.queue import Queue
from imaging.codecs import decode_image
from imaging.pipeline import parse_pipeline, run_pipeline
from imaging.storage import Storage
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import submit_tasks
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


def test_idempotency_key_with_the_same_request_returns_the_first_job(
    api, png_bytes, redis_client, queue_config
):
    image = upload(api, png_bytes())
    body = {**SEED, "images": [image], "priority": "low"}
    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    again = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    assert accepted(redis_client, queue_config) == 1


@pytest.mark.parametrize("change", [
    {"images": "both"}, {"filters": ["sharpen", "edges", "grayscale"]}, {"priority": "high"},
    {"output_format": "png"}, {"quality": 50},
    {"filter_params": {"sharpen": {"intensity": 4}, "edges": {"threshold1": 50,
                                                              "threshold2": 150}}},
])
def test_idempotency_key_with_a_different_request_answers_422(
    api, png_bytes, redis_client, queue_config, change
):
    image = upload(api, png_bytes())
    body = {**SEED, "images": [image]}
    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == 202
    changed = {**body, **change}
    if change.get("images") == "both":
        changed["images"] = [image, image]
    again = api.post(URL, changed, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    assert again.status_code == 422, again.json()
    assert again.json()["error"] == "idempotency_key_reused"
    assert "Idempotency-Key" in again.json()["message"]
    assert accepted(redis_client, queue_config) == 1


def test_idempotency_key_compares_the_bytes_of_multipart_uploads(
    api, png_bytes, redis_client, queue_config, media_root
):
    def post(*seeds: int):
        files = [SimpleUploadedFile(f"{i}.png", png_bytes(seed=seed)) for i, seed in
                 enumerate(seeds)]
        return api.post(URL, {"files": files, "options": '{"filters": ["grayscale"]}'},
                        format="multipart", HTTP_IDEMPOTENCY_KEY="upload-7")

    first = post(1, 2)
    assert first.status_code == 202
    stored = sorted((media_root / "uploads").iterdir())
    # The same files again: the first job, and nothing more stored
    again = post(1, 2)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    # Other bytes under the same names: refused before anything is stored
    other = post(1, 3)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert sorted((media_root / "uploads").iterdir()) == stored
    assert accepted(redis_client, queue_config) == 2


def test_submission_carries_the_request_id_to_the_task_message(
    api, png_bytes, redis_client, queue_config
):
    image = upload(api, png_bytes())
    body = api.post(URL, {**SEED, "images": [image]}, format="json",
                    HTTP_X_REQUEST_ID="req-abc.1").json()
    payload = redis_client.hget(queue_config.keys.task(f"{body['id']}.0"), "payload")
    message = TaskMessage.from_json(payload)
    assert message.request_id == "req-abc.1" and message.image_id == image
    # an id unsafe for log lines is replaced by one the server made, which the answer names
    response = api.post(URL, {**SEED, "images": [image]}, format="json",
                        HTTP_X_REQUEST_ID="a b\nlevel=error")
    payload = redis_client.hget(queue_config.keys.task(f"{response.json()['id']}.0"), "payload")
    carried = TaskMessage.from_json(payload).request_id
    assert carried == response["X-Request-ID"] and "level" not in carried


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


def test_tenant_cap_answers_429_tenant_queue_full_to_that_tenant_only(
    api, png_bytes, settings, queue_config, redis_client
):
    # Given a cap of 3 open tasks per tenant (the API's caller is the anonymous tenant)
    config = dataclasses.replace(queue_config, tenant_max_open_tasks=3)
    settings.DISTRIBUTED = config
    image = upload(api, png_bytes())
    assert api.post(URL, {**SEED, "images": [image] * 2}, format="json").status_code == 202
    # When the same tenant asks for 2 more
    response = api.post(URL, {**SEED, "images": [image] * 2}, format="json")
    # Then it is refused with its own code, and nothing was half-stored
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response.json()["error"] == "tenant_queue_full"
    assert accepted(redis_client, queue_config) == 2
    # And another tenant still gets in
    submit_tasks(Queue(redis_client, config), 3, tenant="other")
    assert accepted(redis_client, queue_config) == 5


@pytest.mark.parametrize("method, path", [
    ("post", URL), ("get", "/api/workers/status/"), ("get", "/api/dead-letters/"),
    ("get", f"/api/jobs/{new_job_id()}/"),
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
    job = submit_tasks(queue, seconds=30, priority="low")

    def reported() -> dict | None:
        # a loaded machine may delay a heartbeat past 1.5 intervals (degraded): poll until
        # the worker reports its task with a fresh heartbeat
        body = api.get("/api/workers/status/").json()
        workers = body["workers"]
        ok = workers and workers[0]["current_task"] and workers[0]["status"] == "healthy"
        return body if ok else None

    body = wait_until(reported, 20, message="the worker to report its task")
    [w] = body["workers"]
    assert w["id"] == "w1" and w["current_task"] == f"{job}.0"
    for field in ("hostname", "pid", "seconds_since_heartbeat", "tasks_completed",
                  "tasks_failed", "uptime_s", "concurrency", "status_rule"):
        assert field in w
    assert body["queue"]["in_progress"] == 1
    assert "throughput" in body["queue"] and body["alerts"] == []


def test_status_alerts_when_no_worker_is_alive(api, queue):
    submit_tasks(queue, 1)
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
    assert names == ["a.png"]


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
    job = submit_tasks(queue, 2)
    for d in queue.fetch(consumer="c", owner="c/1", count=2):
        queue.fail(d, kind="x", message="boom", permanent=True, retry_in_s=0)
    response = api.post("/api/dead-letters/", {"action": "discard", "all": True}, format="json")
    assert response.json()["changed"] == 2
    assert get_job(redis_client, queue_config, job)["status"] == "cancelled"
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
    # Given 1,000 tasks, then 100,000: the status call sends the same Redis commands. (It
    # reads the head of each tenant's non-empty list per priority, for the oldest pending
    # task: the same lists, normal and low, hold tasks in both cases.)
    config = dataclasses.replace(queue_config, max_queued_tasks=200_000,
                                 tenant_max_open_tasks=200_000)
    settings.DISTRIBUTED = config
    queue = Queue(redis_client, config)

    def commands_for_one_status_call() -> int:
        redis_client.config_resetstat()
        assert api.get("/api/workers/status/").status_code == 200
        return int(redis_client.info("stats")["total_commands_processed"])

    submit_tasks(queue, 500)
    submit_tasks(queue, 500, priority="low")
    commands_for_one_status_call()  # warm up: connection setup commands are not the point
    few = commands_for_one_status_call()
    for _ in range(99):
        submit_tasks(queue, 1000, priority="low")
    many = commands_for_one_status_call()
    body = api.get("/api/workers/status/").json()
    assert body["queue"]["accepted"] == 100_000
    assert few == many


def test_dashboard_leads_to_the_console_which_reads_the_status_endpoint(api):
    response = api.get("/dashboard/")
    assert response.status_code == 302 and response["Location"] == "/console/"
    html = api.get("/console/").content.decode()
    assert '"/api/workers/status/"' in html and "console.js" in html
    assert "cdn" not in html.lower() and "https://" not in html


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


def test_job_cancelled_after_a_task_completed_answers_cancelled_with_its_counts(
    api, png_bytes, queue
):
    # Given a job of three images, one of which a worker completed
    image = upload(api, png_bytes())
    body = api.post(URL, {**SEED, "images": [image] * 3}, format="json").json()
    [d] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    queue.complete(d, TaskResult(duration_ms=1.0, worker="w1", attempt=1))
    # When the rest is cancelled
    response = api.post(f"/api/jobs/{body['id']}/cancel/")
    # Then the job says it was cancelled, and its progress tells what happened
    assert response.json() == {"id": body["id"], "cancelled": 2, "status": "cancelled"}
    job = api.get(f"/api/jobs/{body['id']}/").json()
    assert job["status"] == "cancelled"
    assert job["progress"] == {"completed": 1, "failed": 0, "cancelled": 2, "pending": 0,
                               "running": 0, "delayed": 0}
    assert [r["status"] for r in job["results"]] == ["completed", "cancelled", "cancelled"]


@pytest.mark.parametrize("suffix", [":tasks", ".0", ":x", "%0A"])
def test_malformed_job_ids_answer_404_json(api, png_bytes, suffix, redis_client, queue_config):
    # Given a distributed job (its task list is the Redis key "<prefix>:job:<id>:tasks")
    image = upload(api, png_bytes())
    job = api.post(URL, {**SEED, "images": [image]}, format="json").json()["id"]
    # Then ids derived from it name no job, for reads and for cancels
    for response in (api.get(f"/api/jobs/{job}{suffix}/"),
                     api.post(f"/api/jobs/{job}{suffix}/cancel/")):
        assert response.status_code == 404
        assert response.json()["error"] == "job_not_found"
    assert accepted(redis_client, queue_config) == 1
    assert api.get(f"/api/jobs/{job}/").json()["status"] == "queued"


def test_a_killed_workers_row_shows_no_current_task_while_another_runs_it(
    api, queue, start_worker
):
    # Given w1 holding a long task
    w1 = start_worker("w1")
    job = submit_tasks(queue, seconds=30)
    wait_until(lambda: api.get("/api/workers/status/").json()["workers"][0]["current_task"],
               20, message="w1 to report its task")
    # When w1 is killed and w2 takes the task over
    w1.signal(signal.SIGKILL)
    w1.wait(10)
    start_worker("w2")

    def rows() -> dict | None:
        workers = {w["id"]: w for w in api.get("/api/workers/status/").json()["workers"]}
        ok = workers.get("w1", {}).get("status") == "dead" and workers.get("w2", {}).get(
            "current_task")
        return workers if ok else None

    workers = wait_until(rows, 30, message="w1 dead and w2 on the task")
    # Then only w2 shows the task
    assert workers["w2"]["current_task"] == f"{job}.0"
    assert workers["w1"]["current_task"] is None
