"""The job event stream through a real ASGI server (uvicorn), a real Redis and a real worker:
the stream shows the queued job, follows it while a worker runs it, ends, and closes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.workers import ROOT, wait_until, worker_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def uvicorn_api(queue_config, tmp_path: Path, start_worker) -> Iterator[str]:
    env = worker_env(queue_config, start_worker.media_root, VAR_DIR=str(tmp_path / "var"),
                     SSE_POLL_SECONDS="0.05", DJANGO_ALLOWED_HOSTS="127.0.0.1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=120)
    port = free_port()
    log = (tmp_path / "uvicorn.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "uvicorn.log").read_text()
            with contextlib.suppress(requests.ConnectionError):
                return requests.get(f"{base}/api/health/live/", timeout=2).ok
            return False
        wait_until(up, 60, message="uvicorn to answer")
        yield base
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()


def test_the_stream_follows_a_distributed_job_under_uvicorn(uvicorn_api, start_worker):
    body = requests.post(f"{uvicorn_api}/api/process-batch/distributed/",
                         json={"filters": ["sharpen"], "images": []}, timeout=30).json()
    events: list[tuple[str, dict]] = []
    started = time.monotonic()
    with requests.get(f"{uvicorn_api}/api/jobs/{body['id']}/events/", stream=True,
                      timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        name = None
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
                if len(events) == 1:
                    start_worker("w1")  # Given the queued job's first event, a worker runs it
            assert time.monotonic() - started < 90, events
        # The loop ends because the server closed the stream after `end`.
    assert events[0] == ("progress", events[0][1]) and events[0][1]["status"] == "queued"
    assert events[-1][0] == "end" and events[-1][1]["status"] == "completed"
    assert events[-1][1]["progress"]["completed"] == body["total"]
