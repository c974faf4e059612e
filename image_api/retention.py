"""Retention on disk and in the database: uploads, outputs, thumbnails and local job records
older than ``RETENTION_DAYS`` are deleted by a janitor that runs inside the API (no cron).

Redis keeps its own clock (finished jobs and tasks EXPIRE after the same retention, see
distributed/keys.py); each sweep also trims the expired ids from the jobs index.

The janitor is a daemon thread started by the first request a process serves
(:class:`JanitorMiddleware`), sweeping every ``JANITOR_INTERVAL_SECONDS``. Only one process
of the cluster sweeps at a time: it holds a Redis lease lock when Redis is configured, else an
exclusive file lock under ``VAR_DIR``. A sweep deletes at most ``limit`` files or directories
and ``limit`` job rows; what is left waits for the next sweep. The built-in samples
(``samples/``) are never touched. ``python manage.py purge_expired`` runs one sweep.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Q

from distributed.errors import DistributedError
from image_api.broker import broker
from image_api.models import Job

logger = logging.getLogger(__name__)

# Directories of MEDIA_ROOT the janitor sweeps: uploads/<file>, outputs/<job>/,
# thumbnails/<job>/ (when thumbnails live apart). Never samples/.
SWEPT = ("uploads", "outputs", "thumbnails")
SWEEP_LIMIT = 1000
SCAN_LIMIT = 100_000  # directory entries looked at per directory and sweep
LOCK_NAME = "janitor"


@dataclass
class SweepReport:
    """What one sweep did (``locked``: another process was sweeping; nothing was done)."""

    files: int = 0
    jobs: int = 0
    index_trimmed: int = 0
    locked: bool = False

    def as_fields(self) -> dict[str, Any]:
        return {"files": self.files, "jobs": self.jobs, "index_trimmed": self.index_trimmed,
                "locked": self.locked}


def retention_s() -> float:
    return float(settings.DISTRIBUTED.retention_days) * 86400


def _newest_mtime(entry: os.DirEntry[str]) -> float:
    """An entry's age: a file's mtime; for a directory, the newest mtime of it and of what it
    holds directly (an output directory is as young as its last file)."""
    newest = entry.stat(follow_symlinks=False).st_mtime
    if entry.is_dir(follow_symlinks=False):
        with os.scandir(entry.path) as children:
            for child in children:
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, child.stat(follow_symlinks=False).st_mtime)
    return newest


def _remove(entry: os.DirEntry[str]) -> None:
    if entry.is_dir(follow_symlinks=False):
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)


def expire_files(media_root: Path, cutoff: float, limit: int) -> int:
    """Delete the entries of the swept directories last written before ``cutoff`` (epoch s);
    how many were deleted, at most ``limit``. Symlinks are removed, never followed."""
    deleted = 0
    for name in SWEPT:
        directory = Path(media_root) / name
        if not directory.is_dir() or directory.is_symlink():
            continue
        with os.scandir(directory) as entries:
            for scanned, entry in enumerate(entries):
                if deleted >= limit or scanned >= SCAN_LIMIT:
                    break
                if entry.name.startswith("."):
                    continue  # a write in progress (write_atomic's temporary file)
                try:
                    if _newest_mtime(entry) < cutoff:
                        _remove(entry)
                        deleted += 1
                except FileNotFoundError:
                    continue  # removed meanwhile
    return deleted


def expire_job_rows(cutoff: float, limit: int) -> int:
    """Delete local-mode job records finished (or, without a finish time, created) before
    ``cutoff``; at most ``limit``."""
    when = datetime.fromtimestamp(cutoff, tz=UTC)
    old = Q(finished_at__lt=when) | Q(finished_at__isnull=True, created_at__lt=when)
    ids = list(Job.objects.filter(old).order_by("created_at").values_list("id", flat=True)[:limit])
    if ids:
        Job.objects.filter(id__in=ids).delete()
    return len(ids)


def _trim_index() -> int:
    if not settings.DISTRIBUTED.redis_url:
        return 0
    return broker().trim_expired_jobs()


def sweep(*, now: float | None = None, limit: int = SWEEP_LIMIT) -> SweepReport:
    """One sweep, unlocked (see :func:`sweep_locked`)."""
    cutoff = (time.time() if now is None else now) - retention_s()
    report = SweepReport()
    report.files = expire_files(Path(settings.MEDIA_ROOT), cutoff, limit)
    report.jobs = expire_job_rows(cutoff, limit)
    try:
        report.index_trimmed = _trim_index()
    except DistributedError as exc:
        logger.warning("retention.index_trim_failed", extra={"error": str(exc)})
    return report


@contextlib.contextmanager
def _file_lock() -> Iterator[bool]:
    var_dir = Path(settings.VAR_DIR)
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / "janitor.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _redis_lock(ttl_ms: int) -> Iterator[bool]:
    b = broker()
    token = b.try_lock(LOCK_NAME, ttl_ms)
    try:
        yield token is not None
    finally:
        if token is not None:
            b.unlock(LOCK_NAME, token)


def sweep_locked(*, now: float | None = None, limit: int = SWEEP_LIMIT) -> SweepReport:
    """One sweep, if no other process of the cluster is sweeping (Redis lock when Redis is
    configured, else a file lock under VAR_DIR)."""
    lock = (_redis_lock(10 * 60 * 1000) if settings.DISTRIBUTED.redis_url else _file_lock())
    with lock as held:
        if not held:
            return SweepReport(locked=True)
        report = sweep(now=now, limit=limit)
    if report.files or report.jobs or report.index_trimmed:
        logger.info("retention.swept", extra=report.as_fields())
    return report


class Janitor:
    """The sweeping thread of one process."""

    def __init__(self, interval_s: float, run: Callable[[], SweepReport] = sweep_locked) -> None:
        self.interval_s = interval_s
        self._run = run
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="janitor", daemon=True)

    def _loop(self) -> None:
        # A random first delay: processes started together do not all try at once.
        delay = random.uniform(0.1, 1.0) * min(self.interval_s, 60.0)
        while not self.stop.wait(delay):
            try:
                self._run()
            except Exception:  # a bad sweep must not end the thread; the next one retries
                logger.exception("retention.sweep_failed")
            finally:
                connections.close_all()  # this thread's database connections
            delay = self.interval_s * random.uniform(0.9, 1.1)


_started: Janitor | None = None
_start_lock = threading.Lock()


def ensure_janitor() -> Janitor | None:
    """Start this process's janitor once (None when JANITOR_INTERVAL_SECONDS is 0)."""
    global _started
    interval = float(settings.JANITOR_INTERVAL_S)
    if _started is not None or interval <= 0:
        return _started
    with _start_lock:
        if _started is None:
            janitor = Janitor(interval)
            janitor.thread.start()
            _started = janitor
    return _started


class JanitorMiddleware:
    """Starts the janitor on the first request a process serves: not at import, so neither
    gunicorn's preloading master (whose threads a fork would lose) nor management commands
    start one."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self._started = False

    def __call__(self, request: Any) -> Any:
        if not self._started:
            ensure_janitor()
            self._started = True
        return self.get_response(request)
