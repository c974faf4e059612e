"""Real worker processes for integration tests (``python -m workers``), always cleaned up.

``start_worker("w1")`` starts one with the test's Redis and queue settings and returns a
:class:`WorkerProcess`; the fixture kills whatever is still running at teardown, even when the
test failed, and resumes stopped ones first so SIGKILL lands.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from distributed.config import QueueConfig

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["WorkerProcess", "log_events", "process_group", "start_worker", "task_processes",
           "wait_until", "worker_env"]


def wait_until(predicate: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.05,
               message: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {message}")
        time.sleep(interval_s)


def log_events(text: str, event: str | None = None) -> list[dict[str, Any]]:
    """The JSON log lines in ``text`` (the default LOG_FORMAT), or those of one event; other
    lines (a crash's traceback) are skipped."""
    events = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and (event is None or record.get("event") == event):
                events.append(record)
    return events


def task_processes(worker_pid: int) -> set[int]:
    """The PIDs of a worker's task processes (workers/sandbox.py): its multiprocessing
    children, started by its work threads (multiprocessing's resource tracker is not one)."""
    found = set()
    for thread in Path(f"/proc/{worker_pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for pid in map(int, (thread / "children").read_text().split()):
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        found.add(pid)
    return found


def process_group(pid: int) -> int | None:
    """The process group of ``pid``; None once it is gone (a zombie counts as gone)."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else int(fields[2])
    return None


def worker_env(config: QueueConfig, media_root: Path, **extra: str) -> dict[str, str]:
    # LOG_FORMAT is left to its default (JSON), whatever the shell running the tests says.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS_", "WORKER_")) and k != "LOG_FORMAT"}
    env.update(
        REDIS_URL=config.redis_url,
        REDIS_PREFIX=config.prefix,
        HEARTBEAT_INTERVAL_SECONDS=str(config.heartbeat_interval_s),
        TASK_LEASE_SECONDS=str(config.lease_s),
        MAX_RETRIES=str(config.max_retries),
        RETRY_BACKOFF_BASE_SECONDS=str(config.retry_backoff_base_s),
        RETRY_BACKOFF_MAX_SECONDS=str(config.retry_backoff_max_s),
        DEAD_WORKER_RETENTION_SECONDS=str(config.dead_worker_retention_s),
        RETENTION_DAYS=str(config.retention_days),
        MEDIA_ROOT=str(media_root),
        SHUTDOWN_GRACE_SECONDS="15",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    worker_id: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)

    def wait(self, timeout_s: float = 30.0) -> int:
        return self.proc.wait(timeout_s)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """Its log lines so far, parsed (see :func:`log_events`)."""
        return log_events(self.log(), event)

    def logged(self, event: str) -> bool:
        return bool(self.events(event))

    def wait_started(self, timeout_s: float = 30.0) -> None:
        wait_until(lambda: self.logged("worker.start") or self.proc.poll() is not None,
                   timeout_s, message=f"{self.worker_id} to start")
        assert self.proc.poll() is None, self.log()

    def stop_now(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def start_worker(
    queue_config: QueueConfig, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)

    def start(worker_id: str, *, wait: bool = True, media_root: Path | None = None,
              new_session: bool = False, **env: str) -> WorkerProcess:
        """``new_session``: the worker leads a process group of its own, as the PID 1 of a
        container or a supervisord program does."""
        log_path = tmp_path / f"{worker_id}-{len(started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workers"], cwd=ROOT, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=new_session,
                env=worker_env(queue_config, media_root or media, WORKER_ID=worker_id, **env),
            )
        worker = WorkerProcess(worker_id, proc, log_path)
        started.append(worker)
        if wait:
            worker.wait_started()
        return worker

    start.media_root = media  # type: ignore[attr-defined]
    try:
        yield start
    finally:
        for worker in started:
            worker.stop_now()
