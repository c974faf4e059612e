"""Retention: files and records older than RETENTION_DAYS go (the janitor's sweep), fresher
ones and the samples stay; a finished task keeps only what the job view reads."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from distributed.jobs import get_job
from distributed.messages import TaskResult
from image_api import retention
from image_api.models import Job
from tests.support.redis import assert_counts_add_up

pytestmark = pytest.mark.django_db
DAY = 86400.0


def upload(api: APIClient, data: bytes) -> str:
    response = api.post("/api/images/", {"files": [SimpleUploadedFile("a.png", data)]},
                        format="multipart")
    assert response.status_code == 201
    return response.json()["images"][0]["id"]


def age(path: Path, days: float) -> None:
    when = time.time() - days * DAY
    os.utime(path, (when, when))


def run_job(api: APIClient, image: str) -> str:
    job = api.post("/api/process-batch/threading/", {"filters": ["grayscale"], "images": [image]},
                   format="json").json()
    return job["id"]


def test_a_sweep_removes_what_is_older_than_the_retention_and_nothing_else(
    settings, media_root: Path, png_bytes
):
    settings.RETENTION_DAYS = 2
    api = APIClient()
    old_image, new_image = upload(api, png_bytes(seed=1)), upload(api, png_bytes(seed=2))
    old_job, new_job = run_job(api, old_image), run_job(api, new_image)
    for path in (media_root / "uploads").glob(f"{old_image}.*"):
        age(path, 3)
    age(media_root / "outputs" / old_job, 3)
    Job.objects.filter(pk=old_job).update(created_at=timezone.now() - timedelta(days=3))
    APIClient().get("/api/images/")  # the samples are written on first use
    samples = sorted(p.name for p in (media_root / "samples").iterdir())
    assert samples

    removed = retention.sweep()

    assert removed == {"uploads": 1, "outputs": 1, "jobs": 1}
    assert not list((media_root / "uploads").glob(f"{old_image}.*"))
    assert len(list((media_root / "uploads").glob(f"{new_image}.*"))) == 2
    assert not (media_root / "outputs" / old_job).exists()
    assert any((media_root / "outputs" / new_job).iterdir())
    assert list(Job.objects.values_list("id", flat=True)) == [new_job]
    assert sorted(p.name for p in (media_root / "samples").iterdir()) == samples
    assert api.get(f"/api/jobs/{old_job}/").status_code == 404
    assert api.get(f"/api/images/{old_image}/").status_code == 404
    assert api.get(f"/api/jobs/{new_job}/outputs/0/").status_code == 200
    assert retention.sweep() == {"uploads": 0, "outputs": 0, "jobs": 0}


def test_a_sweep_does_bounded_work(settings, media_root: Path, png_bytes):
    settings.RETENTION_DAYS = 1
    api = APIClient()
    for seed in range(5):
        for path in (media_root / "uploads").glob(f"{upload(api, png_bytes(seed=seed))}.*"):
            age(path, 2)
    assert retention.sweep(limit=2)["uploads"] == 2
    assert retention.sweep(limit=2)["uploads"] == 2
    assert retention.sweep(limit=2)["uploads"] == 1


def test_purge_expired_command_and_the_lock(settings, media_root: Path, png_bytes, capsys):
    settings.RETENTION_DAYS = 1
    image = upload(APIClient(), png_bytes())
    for path in (media_root / "uploads").glob(f"{image}.*"):
        age(path, 2)
    with retention._exclusive(media_root / ".retention.lock") as mine:
        assert mine
        call_command("purge_expired")  # another "process" holds the lock: nothing done
        assert "another process" in capsys.readouterr().out
    call_command("purge_expired")
    assert "1 uploads" in capsys.readouterr().out
    assert not list((media_root / "uploads").glob(f"{image}.*"))


@pytest.mark.django_db(transaction=True)
def test_the_janitor_thread_sweeps_on_its_own(settings, media_root: Path, png_bytes):
    settings.RETENTION_DAYS = 1
    image = upload(APIClient(), png_bytes())
    for path in (media_root / "uploads").glob(f"{image}.*"):
        age(path, 2)
    retention.reset_for_tests()
    stop = retention.start_janitor(0.2)
    assert stop is not None
    try:
        assert retention.start_janitor(0.2) is None  # one per process
        deadline = time.monotonic() + 20
        while list((media_root / "uploads").glob(f"{image}.*")):
            assert time.monotonic() < deadline, "the janitor did not sweep"
            time.sleep(0.1)
    finally:
        stop.set()
        retention.reset_for_tests()


def test_a_completed_task_keeps_only_what_the_job_view_reads(
    settings, queue_config, queue, redis_client
):
    settings.DISTRIBUTED = queue_config
    api = APIClient()
    job = api.post("/api/process-batch/distributed/", {"filters": ["grayscale"]},
                   format="json").json()["id"]
    task_id = f"{job}.0"
    key = queue_config.keys.task(task_id)
    payload = redis_client.hget(key, "payload")
    assert payload
    [delivery] = [d for d in queue.fetch(consumer="c", owner="c/1", count=100)
                  if d.task_id == task_id]
    assert queue.complete(delivery, TaskResult(
        duration_ms=1.0, worker="c", attempt=delivery.attempt, output_key="outputs/x.png",
        format="png", width=1, height=1, bytes=1))
    fields = {k.decode() for k in redis_client.hkeys(key)}
    assert "payload" not in fields and "image" in fields
    kept = redis_client.memory_usage(key)
    redis_client.hset(key, "payload", payload)  # what it would hold with its payload
    assert kept < redis_client.memory_usage(key)
    redis_client.hdel(key, "payload")
    [entry] = [t for t in get_job(redis_client, queue_config, job)["tasks"]
               if t["id"] == task_id]
    assert entry["image"].startswith("sample-") and entry["state"] == "completed"
    detail = api.get(f"/api/jobs/{job}/").json()
    assert detail["results"][0]["image"] == entry["image"]
    assert_counts_add_up(redis_client, queue_config)
