"""The CLI against a small scripted HTTP server on a real loopback socket, for what a healthy
API server does not do on demand: 429s with Retry-After, no event stream (polling), an
output that trickles while Ctrl+C arrives, and the Authorization header it receives."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from tests.cli.conftest import cli_env
from tests.support.receiver import Receiver, respond
from tests.support.workers import ROOT, wait_until

JOB = "job_" + "ab" * 16
PAGE = {"total": 0, "offset": 0, "limit": 20, "distributed_unavailable": False,
        "distributed_truncated": False, "items": []}


@pytest.fixture
def stub(receiver: Receiver) -> Receiver:
    """The receiver (tests/support/receiver.py) answering 404 not_found, as the API does,
    whatever a test gives no route."""
    receiver.fallback = lambda handler: respond(
        handler, 404, {"error": "not_found", "message": "No such endpoint."})
    return receiver


def run_cli(stub: Receiver, tmp_path: Path, *args: str,
            **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imgproc_cli", *args], cwd=ROOT,
                          env=cli_env(stub.url, tmp_path / "cache", **env),
                          capture_output=True, text=True, timeout=60)


def test_429_is_retried_after_retry_after(stub, tmp_path):
    answers = iter([429, 429, 200])

    def jobs(handler: BaseHTTPRequestHandler) -> None:
        status = next(answers)
        if status == 429:
            respond(handler, 429, {"error": "throttled", "message": "Slow down."},
                      {"Retry-After": "1"})
        else:
            respond(handler, 200, PAGE)
    stub.routes[("GET", "/api/jobs/")] = jobs
    started = time.monotonic()
    run = run_cli(stub, tmp_path, "--json", "jobs")
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started >= 2.0  # waited Retry-After twice
    assert stub.count("GET", "/api/jobs/") == 3
    assert run.stderr.count("server busy (throttled): retrying in 1 s") == 2
    assert json.loads(run.stdout)["total"] == 0


def test_429_that_never_ends_gives_up_with_exit_4(stub, tmp_path):
    stub.routes[("GET", "/api/jobs/")] = lambda h: respond(
        h, 429, {"error": "queue_full", "message": "The queue is full."}, {"Retry-After": "0"})
    run = run_cli(stub, tmp_path, "jobs")
    assert run.returncode == 4
    assert stub.count("GET", "/api/jobs/") == 6  # the first try and 5 retries
    assert "429 queue_full: The queue is full. (gave up after 5 retries)" in run.stderr


def test_the_api_key_is_sent_as_a_bearer_token(stub, tmp_path):
    stub.routes[("GET", "/api/jobs/")] = lambda h: respond(h, 200, PAGE)
    assert run_cli(stub, tmp_path, "--api-key", "k1", "jobs").returncode == 0
    assert run_cli(stub, tmp_path, "jobs", IMGPROC_API_KEY="k2").returncode == 0
    assert [r.headers.get("Authorization") for r in stub.requests] == \
        ["Bearer k1", "Bearer k2"]


def test_a_5xx_exits_5_and_a_401_says_how_to_give_a_key(stub, tmp_path):
    stub.routes[("GET", "/api/workers/status/")] = lambda h: respond(
        h, 503, {"error": "redis_unavailable", "message": "Redis is unavailable."})
    run = run_cli(stub, tmp_path, "workers")
    assert run.returncode == 5 and "503 redis_unavailable: Redis is unavailable." in run.stderr
    stub.routes[("GET", "/api/jobs/")] = lambda h: respond(
        h, 401, {"error": "authentication_required", "message": "This server requires a key."})
    run = run_cli(stub, tmp_path, "jobs")
    assert run.returncode == 4 and "--api-key or IMGPROC_API_KEY" in run.stderr


def detail(status: str, done: bool) -> dict:
    result = {"index": 0, "image": "img_" + "0" * 32, "status": "completed" if done else
              "pending", "state": "completed" if done else "pending", "format": "png",
              "output_url": f"/api/jobs/{JOB}/outputs/0/" if done else None}
    return {"id": JOB, "mode": "distributed", "status": status, "total": 1,
            "progress": {"completed": int(done), "failed": 0, "cancelled": 0},
            "results": [result]}


def test_without_an_event_stream_the_job_is_polled(stub, tmp_path):
    # The events endpoint answers 404 not_found (an older server): the CLI polls the job
    polls = iter(["queued", "running", "completed"])

    def job(handler: BaseHTTPRequestHandler) -> None:
        status = next(polls, "completed")
        respond(handler, 200, detail(status, status == "completed"))

    def output(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Disposition", 'inline; filename="../../evil/pic.png"')
        handler.send_header("Content-Length", "4")
        handler.end_headers()
        handler.wfile.write(b"data")
    stub.routes[("GET", f"/api/jobs/{JOB}/")] = job
    stub.routes[("GET", f"/api/jobs/{JOB}/outputs/0/")] = output
    from imgproc_cli.client import Client
    from imgproc_cli.follow import follow
    seen = []
    final = follow(Client(stub.url), JOB, seen.append, poll_interval_s=0.05)
    assert final.status == "completed" and [p.status for p in seen][-1] == "completed"
    assert stub.count("GET", f"/api/jobs/{JOB}/events/") == 1
    assert stub.count("GET", f"/api/jobs/{JOB}/") >= 3
    # download: the server's name is reduced to a plain file name inside --out
    run = run_cli(stub, tmp_path, "download", JOB, "--out", str(tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["pic.png"]
    assert (tmp_path / "out" / "pic.png").read_bytes() == b"data"


def test_ctrl_c_during_a_download_leaves_no_partial_file(stub, tmp_path):
    stub.routes[("GET", f"/api/jobs/{JOB}/")] = lambda h: respond(
        h, 200, detail("completed", True))

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Disposition", 'inline; filename="big.png"')
        handler.send_header("Content-Length", str(10 * 1024 * 1024))
        handler.end_headers()
        handler.wfile.write(b"x" * 256 * 1024)  # a part, then nothing until the test ends
        handler.wfile.flush()
        stub.release.wait(60)
    stub.routes[("GET", f"/api/jobs/{JOB}/outputs/0/")] = trickle
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "imgproc_cli", "download", JOB, "--out",
                             str(out)], cwd=ROOT, env=cli_env(stub.url, tmp_path / "cache"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # Given the download under way: its temporary file holds the first part
        wait_until(lambda: any(p.stat().st_size > 0 for p in out.glob(".imgproc-*.part"))
                   if out.exists() else False, 30, message="the download to start")
        # When Ctrl+C reaches the CLI
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # Then it exits 130 and leaves neither big.png nor its temporary file
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert list(out.iterdir()) == []
