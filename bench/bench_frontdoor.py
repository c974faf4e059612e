"""`/api/health/` latency while the API is under pressure, for the project's serving stack and,
in the same run, the previous one as the reference.

    python bench/bench_frontdoor.py [--samples 300] [--seconds 15]

- project: gunicorn with uvicorn workers (project/gunicorn_conf.py), 2 processes, the ASGI app
  behind project/asgi_middleware.py;
- reference: gunicorn's gthread workers, 2 processes x 4 threads, the WSGI app: what the API
  ran before, and what a Django user would run by default.

Two pressures, each with its own fresh server:
- slow: 64 connections that trickle one byte every 0.5 s (32 in their headers, 32 in a body);
- batches: 50 clients posting small threading-mode batches back to back.

Health is asked sequentially (a probe's view), 300 times or for 30 s; p50 and p99 in ms.
Target (issue "Front door"): p99 < 100 ms in both for the project. A health probe that
times out (5 s) counts as 5,000 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from distributed.embedded import free_port  # noqa: E402
from tests.support.hostile import trickling_clients  # noqa: E402  (the tests' slow clients)

STACKS = {
    "project (uvicorn workers, ASGI)": ["project.asgi:application", "--workers", "2"],
    "reference (gthread 2x4, WSGI)": ["project.wsgi:application", "--workers", "2",
                                      "-k", "gthread", "--threads", "4"],
}


@contextlib.contextmanager
def server(args: list[str]) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as var:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "DATABASE"))}
        env.update(VAR_DIR=var, LOG_LEVEL="WARNING", THREAD_POOL_SIZE="2",
                   THROTTLE_RATE="off", RETENTION_SWEEP_SECONDS="0")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=env, check=True)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", args[0], "-c", "python:project.gunicorn_conf",
             "--bind", f"127.0.0.1:{port}", *args[1:]],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(url + "/api/health/live/", timeout=2).ok:
                        break
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            requests.post(url + "/api/process-batch/threading/", json={"filters": []},
                          timeout=60)  # warm the pool and the samples
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def probe(url: str, samples: int, budget_s: float = 30.0) -> dict[str, float]:
    """Health asked ``samples`` times in sequence, or for ``budget_s`` at most (a starved
    server would otherwise take samples x 5 s)."""
    times = []
    deadline = time.monotonic() + budget_s
    for _ in range(samples):
        if time.monotonic() > deadline:
            break
        started = time.monotonic()
        try:
            requests.get(url + "/api/health/", timeout=5)
            times.append((time.monotonic() - started) * 1000)
        except requests.RequestException:
            times.append(5000.0)
        time.sleep(0.02)
    times.sort()
    return {"p50": statistics.median(times), "p99": times[max(0, int(len(times) * 0.99) - 1)],
            "n": len(times)}


def with_slow_clients(url: str, samples: int) -> dict[str, float]:
    with trickling_clients(int(url.rsplit(":", 1)[1]), 64):
        time.sleep(1)
        return probe(url, samples)


def with_batch_clients(url: str, samples: int) -> dict[str, float]:
    stop = threading.Event()
    done = [0]
    images = [i["id"] for i in requests.get(url + "/api/images/", timeout=30).json()["images"]]
    body = {"filters": ["sharpen", "edges"], "images": images[:2]}

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                with contextlib.suppress(requests.RequestException):
                    session.post(url + "/api/process-batch/threading/", json=body, timeout=60)
                    done[0] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(50)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        started, before = time.monotonic(), done[0]
        result = probe(url, samples)
        result["batches_per_s"] = (done[0] - before) / (time.monotonic() - started)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args(argv)
    rows = []
    for pressure, measure in (("64 slow connections", with_slow_clients),
                              ("50 batch clients", with_batch_clients)):
        for name, stack in STACKS.items():
            with server(stack) as url:
                figures = measure(url, args.samples)
            rows.append((pressure, name, figures))
            print(f"{pressure:22} {name:34} p50 {figures['p50']:8.1f} ms   "
                  f"p99 {figures['p99']:8.1f} ms   ({figures['n']:.0f} probes)"
                  + (f"   {figures['batches_per_s']:.1f} batches/s"
                     if "batches_per_s" in figures else ""),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
