"""The front door on a real server (gunicorn + uvicorn workers, real sockets): trickling clients
do not delay others, over-cap bodies are refused without being stored, slow bodies and slow
requests are cut off; local batches that cannot finish within a request are refused."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from project.asgi_middleware import FrontDoor
from tests.support.hostile import trickling_clients
from tests.support.server import ApiServer

MIB = 1024 * 1024


@pytest.fixture
def start_server(api_server: Callable[..., ApiServer]) -> Callable[..., ApiServer]:
    """``start_server(**env)``: the API as deployed (tests/support/server.py: gunicorn, its
    uvicorn worker), without Redis; ``server.tmpdir`` is its TMPDIR, to watch what it spools."""
    def start(**env: str) -> ApiServer:
        return api_server(env={"LOG_LEVEL": "WARNING", **env})

    return start


def read_response(sock: socket.socket, timeout: float = 15.0) -> tuple[int, bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, body


def tree_bytes(directory: Path) -> int:
    total = 0
    for path in directory.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size if path.is_file() else 0
    return total


@pytest.mark.slow
def test_64_trickling_clients_do_not_delay_health(start_server):
    server = start_server()
    with trickling_clients(server.port, 64):
        time.sleep(1.0)
        times = []
        for _ in range(30):
            started = time.monotonic()
            assert requests.get(server.url + "/api/health/", timeout=10).status_code == 200
            times.append(time.monotonic() - started)
    # Generous: the figure is in bench/bench_frontdoor.py; here, "still answers".
    assert max(times) < 2.0, times
    assert statistics.median(times) < 0.5, times


@pytest.mark.slow
def test_a_declared_length_over_the_cap_is_refused_before_reading(start_server):
    server = start_server(MAX_REQUEST_BYTES=str(MIB))
    with server.connect() as sock:
        sock.sendall(b"POST /api/images/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n"
                     b"Content-Length: 10737418240\r\n\r\n")
        status, body = read_response(sock, timeout=10)
    assert status == 413 and b"request_too_large" in body
    assert tree_bytes(server.tmpdir) == 0


@pytest.mark.slow
def test_a_chunked_body_is_cut_off_at_the_cap_and_never_stored_past_it(start_server):
    cap = 8 * MIB
    server = start_server(MAX_REQUEST_BYTES=str(cap))
    chunk = b"x" * (256 * 1024)
    peak = 0
    with server.connect() as sock:
        sock.sendall(b"POST /api/images/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: multipart/form-data; boundary=x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        try:
            while sent < 64 * MIB:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
                peak = max(peak, tree_bytes(server.tmpdir))
        except OSError:
            pass  # the server stopped reading and closed: what we want
        status, body = read_response(sock)
    assert status == 413 and b"request_too_large" in body
    assert sent < 64 * MIB or peak <= cap
    assert peak <= cap, peak
    assert tree_bytes(server.tmpdir) == 0


@pytest.mark.slow
def test_a_body_that_does_not_arrive_in_time_gets_408(start_server):
    server = start_server(REQUEST_BODY_TIMEOUT_SECONDS="2")
    with server.connect() as sock:
        sock.sendall(b"POST /api/process-batch/threading/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"fil")
        started = time.monotonic()
        status, body = read_response(sock)
    assert status == 408 and b"request_timeout" in body
    assert 1.5 < time.monotonic() - started < 10
    assert requests.get(server.url + "/api/health/live/", timeout=5).status_code == 200


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for {pid}")


def peak_threads_under_slow_requests(server: ApiServer, requests_: int) -> tuple[int, int]:
    """(threads of the server's worker process when idle, the most seen while ``requests_``
    threading batches run at once: each waits in its view for a one-thread pool)."""
    [worker] = server.children()
    batch = {"filters": ["grayscale"]}  # the 8 samples
    url = f"{server.url}/api/process-batch/threading/"
    assert requests.post(url, json=batch, timeout=60).status_code == 200  # pools warm
    idle = threads_of(worker)
    peak, answers = idle, []
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, threads_of(worker))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(requests_) as pool:
            answers = list(pool.map(lambda _: requests.post(url, json=batch, timeout=120)
                                    .status_code, range(requests_)))
    finally:
        done.set()
        sampler.join()
    assert answers == [200] * requests_
    return idle, peak


@pytest.mark.slow
def test_requests_past_the_cap_wait_without_holding_a_thread(start_server):
    # Given servers whose local batches queue behind a one-thread pool, with and without a
    # cap of 2 requests in Django's hands
    env = {"THREAD_POOL_SIZE": "1", "LOCAL_MAX_CONCURRENT_IMAGES": "1"}
    uncapped = start_server(MAX_CONCURRENT_REQUESTS="0", **env)
    capped = start_server(MAX_CONCURRENT_REQUESTS="2", **env)
    # When 8 slow requests come at once, each server answers all of them
    idle_u, peak_u = peak_threads_under_slow_requests(uncapped, 8)
    idle_c, peak_c = peak_threads_under_slow_requests(capped, 8)
    # Then without the cap Django held a thread per request; with it, 2 at most
    assert peak_u - idle_u >= 6, (idle_u, peak_u)
    assert peak_c - idle_c <= 2, (idle_c, peak_c)
    # and the probes do not wait behind the cap
    assert requests.get(f"{capped.url}/api/health/live/", timeout=5).status_code == 200


def drive(app: Any, scope: dict[str, Any], body_chunks: list[bytes]) -> list[dict[str, Any]]:
    """Run an ASGI app on a real event loop with the given request body; what it sent."""
    sent: list[dict[str, Any]] = []
    chunks = list(body_chunks)

    async def receive() -> dict[str, Any]:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


SCOPE = {"type": "http", "method": "POST", "path": "/x", "headers": [], "client": ("1", 1)}


def test_a_request_over_its_deadline_gets_504():
    async def slow_app(scope, receive, send):
        await asyncio.sleep(30)

    door = FrontDoor(slow_app, max_body_bytes=100, body_timeout_s=10, deadline_s=0.3)
    started = time.monotonic()
    sent = drive(door, SCOPE, [])
    assert time.monotonic() - started < 5
    assert sent[0]["status"] == 504 and b"deadline_exceeded" in sent[1]["body"]


def test_the_app_sees_a_disconnect_past_the_cap():
    seen: list[str] = []

    async def reading_app(scope, receive, send):
        while True:
            message = await receive()
            seen.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                return

    door = FrontDoor(reading_app, max_body_bytes=10, body_timeout_s=10, deadline_s=10)
    sent = drive(door, SCOPE, [b"12345", b"67890", b"X", b"never read"])
    assert seen == ["http.request", "http.request", "http.disconnect"]
    assert sent[0]["status"] == 413


# --- local batches must fit in a request ------------------------------------------------------


@pytest.mark.django_db
def test_a_local_batch_that_cannot_finish_within_a_request_is_refused(settings, media_root):
    settings.REQUEST_DEADLINE_SECONDS = 1
    heavy = {"filters": ["blur"], "filter_params": {"blur": {"radius": 50}}}
    response = APIClient().post("/api/process-batch/threading/", heavy, format="json")
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["error"] == "batch_too_expensive" and "distributed" in body["message"]
    assert body["estimated_s"] > body["allowed_s"] == 0.5
    assert not (media_root / "outputs").exists()
    settings.REQUEST_DEADLINE_SECONDS = 300
    light = APIClient().post("/api/process-batch/threading/", {"filters": ["grayscale"]},
                             format="json")
    assert light.status_code == 200
