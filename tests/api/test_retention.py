"""The retention janitor: expired uploads, outputs, thumbnails and local job records go, fresh
ones and the built-in samples stay; one sweep at a time in the cluster."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import time
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from image_api import retention
from image_api.broker import broker
from image_api.models import Job

DAY = 86400


def make(path: Path, age_s: float, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


def job_row(job_id: str, age_s: float) -> Job:
    when = datetime.now(tz=UTC) - timedelta(seconds=age_s)
    return Job.objects.create(id=job_id, mode="threading", status="completed", created_at=when,
                              finished_at=when, total=1)


@pytest.fixture
def one_day(settings, queue_config):
    settings.DISTRIBUTED = dataclasses.replace(queue_config, redis_url="", retention_days=1.0)


@pytest.fixture
def tree(media_root: Path) -> dict[str, Path]:
    old, fresh = 2 * DAY, 60
    paths = {
        "old_upload": make(media_root / "uploads" / "img_old.png", old),
        "old_meta": make(media_root / "uploads" / "img_old.json", old),
        "new_upload": make(media_root / "uploads" / "img_new.png", fresh),
        "old_output": make(media_root / "outputs" / "job_old" / "0000-a.png", old),
        "new_output": make(media_root / "outputs" / "job_new" / "0000-a.png", fresh),
        "old_thumb": make(media_root / "thumbnails" / "job_old" / "0.webp", old),
        "old_sample": make(media_root / "samples" / "sample.png", 30 * DAY),
        "partial": make(media_root / "uploads" / ".img_x.png.123.tmp", old),
    }
    # An output directory holding one fresh file is as young as that file
    make(media_root / "outputs" / "job_mixed" / "0000-a.png", old)
    paths["mixed"] = make(media_root / "outputs" / "job_mixed" / "0001-b.png", fresh)
    for directory in ("outputs/job_old", "outputs/job_new", "outputs/job_mixed",
                      "thumbnails/job_old"):
        when = time.time() - old
        os.utime(media_root / directory, (when, when))
    return paths


@pytest.mark.django_db
def test_a_sweep_deletes_what_expired_and_keeps_the_rest(one_day, tree, media_root):
    job_row("old", 2 * DAY)
    job_row("new", 60)
    report = retention.sweep_locked()
    assert report.files == 4 and report.jobs == 1 and not report.locked
    gone = ("old_upload", "old_meta", "old_output", "old_thumb")
    assert not any(tree[name].exists() for name in gone)
    assert not (media_root / "outputs" / "job_old").exists()
    kept = ("new_upload", "new_output", "old_sample", "partial", "mixed")
    assert all(tree[name].exists() for name in kept)
    assert list(Job.objects.values_list("id", flat=True)) == ["new"]


@pytest.mark.django_db
def test_a_sweep_is_bounded(one_day, media_root):
    for i in range(5):
        make(media_root / "uploads" / f"img_{i}.png", 2 * DAY)
    assert retention.sweep_locked(limit=3).files == 3
    assert len(list((media_root / "uploads").iterdir())) == 2
    assert retention.sweep_locked(limit=3).files == 2


@pytest.mark.django_db
def test_purge_expired_command_runs_one_sweep(one_day, tree):
    out = StringIO()
    call_command("purge_expired", stdout=out)
    assert json.loads(out.getvalue()) == {"files": 4, "jobs": 0, "index_trimmed": 0,
                                          "locked": False}
    assert not tree["old_upload"].exists() and tree["new_upload"].exists()


@pytest.mark.django_db
def test_no_sweep_while_another_process_holds_the_file_lock(one_day, tree, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    with open(tmp_path / "janitor.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a separate open file: flock conflicts with it
        assert retention.sweep_locked().locked
    assert tree["old_upload"].exists()
    assert retention.sweep_locked().files == 4


@pytest.mark.django_db
def test_with_redis_the_lock_is_in_redis_and_the_jobs_index_is_trimmed(
    settings, queue_config, redis_client, tree
):
    config = dataclasses.replace(queue_config, retention_days=1.0)
    settings.DISTRIBUTED = config
    redis_client.zadd(config.keys.jobs(), {"job_gone": 1})  # its job hash expired long ago
    token = broker().try_lock(retention.LOCK_NAME, 10_000)
    assert token is not None
    assert retention.sweep_locked().locked
    assert broker().unlock(retention.LOCK_NAME, token)
    report = retention.sweep_locked()
    assert report.files == 4 and report.index_trimmed == 1
    assert redis_client.zcard(config.keys.jobs()) == 0
    assert not redis_client.exists(config.keys.lock(retention.LOCK_NAME))


@pytest.mark.django_db(transaction=True)
def test_the_janitor_thread_sweeps_on_its_own(one_day, tree):
    janitor = retention.Janitor(interval_s=0.2)
    janitor.thread.start()
    try:
        deadline = time.monotonic() + 10
        while tree["old_upload"].exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        janitor.stop.set()
        janitor.thread.join(5)
    assert not tree["old_upload"].exists() and tree["new_upload"].exists()
    assert not janitor.thread.is_alive()


def test_the_first_request_starts_the_janitor_once(settings, monkeypatch):
    settings.JANITOR_INTERVAL_S = 3600.0
    monkeypatch.setattr(retention, "_started", None)
    middleware = retention.JanitorMiddleware(lambda request: "ok")
    try:
        assert middleware(object()) == "ok"
        janitor = retention._started
        assert janitor is not None and janitor.thread.is_alive()
        middleware(object())
        assert retention.ensure_janitor() is janitor
    finally:
        if retention._started is not None:
            retention._started.stop.set()
            retention._started.thread.join(5)


@pytest.mark.django_db
def test_purge_expired_without_its_redis_says_so_and_deletes_nothing(
    settings, queue_config, tree
):
    from distributed.embedded import free_port

    settings.DISTRIBUTED = dataclasses.replace(
        queue_config, redis_url=f"redis://127.0.0.1:{free_port()}/0", retention_days=1.0)
    with pytest.raises(CommandError, match="Redis is unavailable"):
        call_command("purge_expired", stdout=StringIO())
    assert tree["old_upload"].exists()
