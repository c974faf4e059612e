"""Retention: what is older than RETENTION_DAYS goes, files included, with no cron to install.

One sweep (:func:`sweep`) removes, by age:
- uploads (their metadata first, then their bytes; the built-in samples never);
- job output directories (``outputs/<job id>/``, with their thumbnails), whatever the mode;
- local jobs' database rows.
What the storage says each removal freed goes back to its tenant's usage (image_api/usage).

Distributed jobs' Redis records expire on their own (RETENTION_DAYS after they finish, set
by the Lua scripts). A sweep does bounded work (at most ``limit`` removals of each kind), so
a large backlog is cleared over several sweeps, never in one long pause.

Every API process runs a janitor thread (:func:`start_janitor`, from gunicorn's
``post_worker_init``) that sweeps every RETENTION_SWEEP_SECONDS; a lock file on the shared
media volume lets one process at a time do it. ``manage.py purge_expired`` runs one sweep.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from image_api.background import start_once
from image_api.models import Job
from image_api.usage.services import usage_give_back
from imaging.storage import Storage

logger = logging.getLogger(__name__)

SWEEP_LIMIT = 1000
_started = threading.Event()


def cutoff_for(now: float, retention_days: float) -> float:
    return now - retention_days * 86400.0


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def sweep(*, now: float | None = None, limit: int = SWEEP_LIMIT) -> dict[str, int]:
    """Remove what is older than RETENTION_DAYS; how many of each kind went."""
    now = time.time() if now is None else now
    cutoff = cutoff_for(now, float(settings.RETENTION_DAYS))
    storage = Storage(settings.MEDIA_ROOT)
    removed = {"uploads": 0, "outputs": 0, "jobs": 0}
    if storage.uploads_dir.is_dir():
        for meta in sorted(storage.uploads_dir.glob("img_*.json")):
            if removed["uploads"] >= limit:
                break
            freed = storage.remove_upload(meta.stem) if _older(meta, cutoff) else None
            if freed is not None:
                usage_give_back(freed)
                removed["uploads"] += 1
    outputs = storage.root / "outputs"
    if outputs.is_dir():
        for directory in sorted(outputs.iterdir()):
            if removed["outputs"] >= limit:
                break
            if directory.is_dir() and not directory.is_symlink() and _older(directory, cutoff):
                with contextlib.suppress(ValueError):  # not a job's directory: left alone
                    usage_give_back(storage.remove_outputs(directory.name))
                    removed["outputs"] += 1
    expired = datetime.fromtimestamp(cutoff, tz=UTC)
    ids = list(Job.objects.filter(created_at__lt=expired)
               .order_by("created_at").values_list("id", flat=True)[:limit])
    removed["jobs"], _ = Job.objects.filter(pk__in=ids).delete()
    for job_id in ids:
        with contextlib.suppress(ValueError):
            usage_give_back(storage.remove_outputs(job_id))
    if any(removed.values()):
        logger.info("retention.swept", extra={**removed, "retention_days": settings.RETENTION_DAYS})
    return removed


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[bool]:
    """Whether this process holds the sweep lock (never waits for it)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sweep_if_free() -> dict[str, int] | None:
    """One sweep, unless another process is sweeping (None then)."""
    with _exclusive(Path(settings.MEDIA_ROOT) / ".retention.lock") as mine:
        return sweep() if mine else None


def _run(interval_s: float, stop: threading.Event) -> None:
    while not stop.wait(interval_s):
        try:
            sweep_if_free()
        except Exception:  # a sweep that fails is logged and tried again next time
            logger.exception("retention.sweep_failed")
        finally:
            from django.db import connection

            connection.close()  # this thread's connection, not left to time out


def start_janitor(interval_s: float | None = None) -> threading.Event | None:
    """Start this process's janitor thread (once); the event stops it. None if it runs
    already or RETENTION_SWEEP_SECONDS is 0."""
    interval = float(settings.RETENTION_SWEEP_SECONDS if interval_s is None else interval_s)
    return start_once("retention-janitor", _started, interval, _run)


def reset_for_tests() -> None:
    _started.clear()

