"""One log format across real processes: a worker (``python -m workers``) and the API under
gunicorn with ``project/gunicorn_conf.py``, JSON by default and logfmt on request; and a
setting that does not parse stops either process at startup, naming the variable."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from distributed.embedded import free_port
from distributed.jobs import get_job
from tests.support.tasks import submit_tasks
from tests.support.workers import ROOT, log_events, wait_until

pytestmark = pytest.mark.slow

REQUIRED = ("ts", "level", "logger", "event")


def app_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment for an API process: private state, no Redis, default format."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS_", "LOG_", "DATABASE_URL", "MEDIA_ROOT", "VAR_DIR"))}
    env.update(VAR_DIR=str(tmp_path / "var"), MEDIA_ROOT=str(tmp_path / "media"),
               PYTHONUNBUFFERED="1", **extra)
    return env


def logfmt_fields(line: str) -> dict[str, str]:
    """key=value pairs of a logfmt line (values quoted as JSON strings when they need it)."""
    fields, rest = {}, line
    while rest:
        key, _, rest = rest.partition("=")
        if rest.startswith('"'):
            value, end = json.JSONDecoder().raw_decode(rest)
            rest = rest[end:].lstrip()
        else:
            value, _, rest = rest.partition(" ")
        fields[key] = value
    return fields


# --- workers ---------------------------------------------------------------------------


def finished(redis_client, queue_config, job_id: str) -> bool:
    job = get_job(redis_client, queue_config, job_id)
    return bool(job) and job["status"] not in ("queued", "running")


def test_worker_writes_one_json_object_per_line_with_the_task_ids(
    queue, redis_client, queue_config, start_worker
) -> None:
    w1 = start_worker("w1")
    job_id = submit_tasks(queue)
    wait_until(lambda: w1.logged("task.done"), 30, message="the task to be done")
    w1.signal(signal.SIGTERM)
    assert w1.wait(30) == 0

    lines = [line for line in w1.log().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(all(key in record for key in REQUIRED) for record in records), records
    events = [record["event"] for record in records]
    assert events[0] == "worker.start" and events[-1] == "worker.stop"
    [done] = [record for record in records if record["event"] == "task.done"]
    assert done["logger"] == "workers.runtime" and done["level"] == "info"
    assert done["job_id"] == job_id and done["task_id"] == f"{job_id}.0"
    assert done["worker"] == "w1" and isinstance(done["duration_ms"], float)
    assert finished(redis_client, queue_config, job_id)


def test_worker_writes_logfmt_when_asked(start_worker) -> None:
    w1 = start_worker("w1", wait=False, LOG_FORMAT="logfmt")
    wait_until(lambda: "event=worker.start" in w1.log(), 30, message="w1 to start")
    start = next(line for line in w1.log().splitlines() if "event=worker.start" in line)
    fields = logfmt_fields(start)
    assert list(fields)[:4] == list(REQUIRED)
    assert (fields["level"], fields["logger"], fields["worker"]) == ("info", "workers.runtime",
                                                                     "w1")
    assert log_events(w1.log()) == []  # no JSON at all


def test_worker_warns_once_in_its_log_about_an_old_variable_name(
    start_worker, queue_config
) -> None:
    # worker_env sets the new name; empty counts as unset, so the old name is what is read.
    w1 = start_worker("w1", HEARTBEAT_INTERVAL_SECONDS="",
                      HEARTBEAT_INTERVAL=str(queue_config.heartbeat_interval_s))
    warnings = [record for record in log_events(w1.log())
                if "HEARTBEAT_INTERVAL is deprecated" in record["event"]]
    assert len(warnings) == 1, w1.log()
    assert warnings[0]["level"] == "warning"
    assert "set HEARTBEAT_INTERVAL_SECONDS instead" in warnings[0]["event"]


def test_worker_with_a_value_that_does_not_parse_exits_naming_the_variable(
    queue_config, tmp_path
) -> None:
    env = {**os.environ, "REDIS_URL": queue_config.redis_url, "TASK_LEASE_SECONDS": "abc"}
    run = subprocess.run([sys.executable, "-m", "workers"], env=env, capture_output=True,
                         text=True, timeout=60, cwd=ROOT, check=False)
    assert run.returncode == 2
    assert "TASK_LEASE_SECONDS='abc': expected a number" in run.stderr
    assert "Traceback" not in run.stderr


# --- the API under gunicorn --------------------------------------------------------------


@dataclass
class Gunicorn:
    base: str
    proc: subprocess.Popen[bytes]
    stderr_path: Path

    def stop(self) -> str:
        """SIGTERM by PID, wait for the exit, return its stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator[Callable[..., Gunicorn]]:
    started: list[Gunicorn] = []

    def start(**env: str) -> Gunicorn:
        port = free_port()
        stderr_path = tmp_path / f"gunicorn-{len(started)}.err"
        with stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "project.asgi:application",
                 "-c", "python:project.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
                 "--workers", "1", "--threads", "2", "--graceful-timeout", "5"],
                cwd=ROOT, env=app_env(tmp_path, **env), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr,
            )
        server = Gunicorn(f"http://127.0.0.1:{port}", proc, stderr_path)
        started.append(server)

        def answers() -> bool:
            assert proc.poll() is None, stderr_path.read_text(errors="replace")
            with contextlib.suppress(requests.ConnectionError):
                return requests.get(f"{server.base}/api/health/", timeout=5).ok
            return False

        wait_until(answers, 60, 0.1, message="gunicorn to answer")
        return server

    try:
        yield start
    finally:
        for server in started:
            if server.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    server.proc.kill()
                server.proc.wait(10)


def test_gunicorn_writes_json_lines_with_one_access_line_per_request(start_gunicorn) -> None:
    api = start_gunicorn()
    ok = requests.get(f"{api.base}/api/health/", headers={"X-Request-ID": "probe-1"}, timeout=10)
    missing = requests.get(f"{api.base}/api/no-such-thing/",
                           headers={"X-Request-ID": "probe-2"}, timeout=10)
    assert (ok.headers["X-Request-ID"], missing.headers["X-Request-ID"]) == ("probe-1", "probe-2")
    log = api.stop()

    lines = [line for line in log.splitlines() if line.strip()]
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert all(all(key in record for key in REQUIRED) for record in records), log
    assert any(r["logger"] == "gunicorn.error" and r["event"].startswith("Starting gunicorn")
               for r in records)
    access = {r["request_id"]: r for r in records if r["event"] == "http.access"}
    assert {"probe-1", "probe-2"} <= set(access)
    assert {k: access["probe-1"][k] for k in ("logger", "method", "path", "status")} == {
        "logger": "api.access", "method": "GET", "path": "/api/health/", "status": 200}
    assert access["probe-2"]["status"] == 404
    assert all(isinstance(r["duration_ms"], float) for r in access.values())
    # Django's own line about the 404 carries the id of the request it belongs to.
    [not_found] = [r for r in records if r["logger"] == "django.request"]
    assert not_found["request_id"] == "probe-2" and not_found["level"] == "warning"


def test_gunicorn_writes_logfmt_when_asked(start_gunicorn) -> None:
    api = start_gunicorn(LOG_FORMAT="logfmt")
    requests.get(f"{api.base}/api/health/", headers={"X-Request-ID": "probe-3"}, timeout=10)
    log = api.stop()
    assert log_events(log) == []  # no JSON at all
    [access] = [logfmt_fields(line) for line in log.splitlines()
                if "event=http.access" in line and "request_id=probe-3" in line]
    assert list(access)[:5] == [*REQUIRED, "request_id"]
    assert (access["method"], access["path"], access["status"]) == ("GET", "/api/health/",
                                                                    "200")


def test_api_with_a_value_that_does_not_parse_fails_at_startup_naming_the_variable(
    tmp_path: Path,
) -> None:
    run = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT,
                         env=app_env(tmp_path, TASK_LEASE_SECONDS="abc"),
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode != 0
    assert "TASK_LEASE_SECONDS='abc': expected a number" in run.stderr
