"""``make demo``: a distributed batch long enough to stop and kill workers while it runs.

It submits the 1080p sample photo many times through a five-step pipeline (about 0.2 s of CPU
per image, so 480 images keep 2 cores busy for about a minute), then prints one progress line
a second with the workers' health until the job ends. Ctrl+C stops following; the job goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

DEMO_IMAGE = "sample-landscape"
DEMO_PIPELINE: dict[str, Any] = {
    "steps": [
        {"filter": "blur", "params": {"radius": 12}},
        {"filter": "rotate", "params": {"degrees": 7}},
        {"filter": "sharpen", "params": {"intensity": 2}},
        {"filter": "contrast", "params": {"factor": 1.2}},
        {"filter": "sepia"},
    ],
    "output_format": "jpeg",
}
FINISHED = ("completed", "completed_with_errors", "failed", "cancelled")


def demo_request(images: int) -> dict[str, Any]:
    return {**DEMO_PIPELINE, "images": [DEMO_IMAGE] * images}


def progress_line(job: dict[str, Any], workers: dict[str, Any] | None, elapsed_s: float) -> str:
    p = job.get("progress", {})
    done = p.get("completed", 0) + p.get("failed", 0) + p.get("cancelled", 0)
    line = (f"{elapsed_s:5.0f}s  {job['status']:<10} {done}/{job['total']} done "
            f"(failed {p.get('failed', 0)}), running {p.get('running', 0)}, "
            f"pending {p.get('pending', 0)}, retrying {p.get('delayed', 0)}")
    if workers is not None:
        line += "  |  " + " ".join(
            f"{w['id']}:{w['status']}" for w in workers.get("workers", [])
        )
    return line


def _say(line: str) -> None:
    print(line, flush=True)  # one line a second, also when piped


def run_demo(
    api_url: str, *, images: int, session: requests.Session | None = None,
    say: Callable[[str], None] = _say, interval_s: float = 1.0,
) -> int:
    """Submit the demo batch and follow it; exit code 0 when it completed."""
    http = session or requests.Session()
    base = api_url.rstrip("/")
    try:
        response = http.post(f"{base}/api/process-batch/distributed/",
                             json=demo_request(images), timeout=30)
    except requests.ConnectionError:
        say(f"Cannot reach the API at {base}: is `make run` running?")
        return 1
    if response.status_code != 202:
        say(f"Submit failed ({response.status_code}): {response.text}")
        return 1
    job_url = response.json()["status_url"]
    say(f"Submitted {images} images: {job_url}")
    say("Now try, in another terminal: make worker-kill ID=worker-2, make worker-stop "
        "ID=worker-3, make worker-start ID=worker-2 ...")
    started = time.monotonic()
    try:
        while True:
            job = http.get(job_url, timeout=10).json()
            status = http.get(f"{base}/api/workers/status/", timeout=10)
            workers = status.json() if status.status_code == 200 else None
            say(progress_line(job, workers, time.monotonic() - started))
            if job["status"] in FINISHED:
                return 0 if job["status"] == "completed" else 1
            time.sleep(interval_s)
    except KeyboardInterrupt:
        say(f"\nStopped following; the job goes on: {job_url}")
        return 0
