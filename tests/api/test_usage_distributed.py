"""Storage usage in the distributed mode, with a real Redis and real worker processes: the
workers count the outputs they write in the tenant's usage; below the free-space floor they
fail the task as transient, so it is retried with backoff and completes once there is room."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from distributed.config import QueueConfig
from distributed.embedded import EmbeddedRedis
from tests.support.workers import wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
URL = "/api/process-batch/distributed/"
SHARPEN = {"filters": ["sharpen"], "output_format": "png"}


@pytest.fixture
def queue_config(redis_server: EmbeddedRedis) -> QueueConfig:
    # Retries enough for a worker to fail a task a few times before another takes it over.
    return QueueConfig(
        redis_url=redis_server.url, prefix="t", heartbeat_interval_s=0.5, lease_s=1.5,
        max_retries=30, retry_backoff_base_s=0.1, retry_backoff_max_s=0.4,
        max_queued_tasks=1000, retention_days=3600 / 86400, dead_worker_retention_s=60,
    )


@pytest.fixture(autouse=True)
def _distributed(settings, queue_config, redis_client) -> None:
    settings.DISTRIBUTED = queue_config


def upload(api, data: bytes) -> str:
    response = api.post("/api/images/", {"files": [SimpleUploadedFile("a.png", data)]},
                        format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["images"][0]["id"]


def noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def output_bytes(media_root: Path, job_id: str) -> int:
    directory = media_root / "outputs" / job_id
    return sum(p.stat().st_size for p in directory.iterdir() if p.name != ".tenant")


def completed(api, job_id: str) -> dict | None:
    job = api.get(f"/api/jobs/{job_id}/").json()
    return job if job["status"] == "completed" else None


def used(api) -> int:
    return api.get("/api/usage/").json()["storage"]["used_bytes"]


def test_a_workers_outputs_count_in_the_tenants_usage_and_deleting_gives_them_back(
    api, start_worker, media_root, redis_client, queue_config
):
    start_worker("w1")
    image = noise_png(150)
    image_id = upload(api, image)
    body = api.post(URL, {**SHARPEN, "images": [image_id] * 3}, format="json").json()

    wait_until(lambda: completed(api, body["id"]), 60, message="the job to complete")

    outputs = output_bytes(media_root, body["id"])
    assert len(list((media_root / "outputs" / body["id"]).glob("*.png"))) == 3
    # The worker's charge lands before the completion is recorded: no wait needed here.
    assert used(api) == len(image) + outputs
    assert int(redis_client.hget(queue_config.keys.usage(), "anonymous")) == len(image) + outputs
    assert api.delete(f"/api/jobs/{body['id']}/").status_code == 204
    assert used(api) == len(image)


def test_below_the_floor_a_worker_retries_the_task_and_another_with_room_completes_it(
    api, start_worker, media_root, redis_client, queue_config
):
    # Given a worker whose storage is below its floor (set above the real free space)
    stat = os.statvfs(media_root)
    floor_mib = stat.f_bavail * stat.f_frsize // (1024 * 1024) + 1024
    low = start_worker("w-low", MIN_FREE_DISK_MB=str(floor_mib))
    image = noise_png(80)
    body = api.post(URL, {**SHARPEN, "images": [upload(api, image)]}, format="json").json()
    # When it takes the task: the write is refused, the task retried (transient), never dead
    retries = wait_until(lambda: len(low.events("task.retry")) >= 2 and low.events("task.retry"),
                         60, message="two retries on the low worker")
    assert all("insufficient_storage" in event["error"] and event["permanent"] is False
               for event in retries)
    assert not low.events("task.dead_lettered")
    assert not (media_root / "outputs" / body["id"]).exists()  # nothing written
    assert used(api) == len(image)
    # Then a worker with room completes it, and its outputs are counted
    low.signal(15)
    assert low.wait(30) == 0
    start_worker("w-roomy", MIN_FREE_DISK_MB="0")
    job = wait_until(lambda: completed(api, body["id"]), 60, message="the job to complete")
    assert job["results"][0]["attempts"] >= 3
    assert used(api) == len(image) + output_bytes(media_root, body["id"])


def test_a_distributed_submission_at_the_quota_is_refused_before_it_is_queued(
    api, settings, redis_client, queue_config
):
    settings.TENANT_STORAGE_QUOTA_MB = 1
    redis_client.hset(queue_config.keys.usage(), "anonymous", 1024 * 1024)
    response = api.post(URL, {"filters": ["grayscale"]}, format="json")
    assert response.status_code == 413
    assert response.json()["usage"] == {"used_bytes": 1024 * 1024, "quota_bytes": 1024 * 1024}
    assert int(redis_client.hget(queue_config.keys.stats(), "accepted") or 0) == 0
    assert api.get("/api/jobs/").json()["total"] == 0


def test_a_repeated_submission_answers_its_first_job_even_at_the_quota(
    api, settings, redis_client, queue_config
):
    # Given a job submitted under an Idempotency-Key, then the tenant reaching its quota
    settings.TENANT_STORAGE_QUOTA_MB = 1
    first = api.post(URL, {"filters": ["grayscale"]}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == 202
    redis_client.hset(queue_config.keys.usage(), "anonymous", 1024 * 1024)
    # When the client retries it, and when it sends a new one
    again = api.post(URL, {"filters": ["grayscale"]}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    new = api.post(URL, {"filters": ["grayscale"]}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    # Then the retry gets the first job, the new submission the quota's refusal
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and again.json()["duplicate"] is True
    assert new.status_code == 413 and new.json()["error"] == "storage_quota_exceeded"
