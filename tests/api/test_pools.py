"""The shared executors of the in-process modes."""

from __future__ import annotations

import os
import signal
import time

import cv2
import pytest

from image_api.jobs import pools

pytestmark = pytest.mark.django_db

SEED = {"filters": ["sharpen", "edges"]}


def test_each_pool_is_created_once_and_reused() -> None:
    assert pools.thread_pool() is pools.thread_pool()
    assert pools.process_pool() is pools.process_pool()
    assert pools.executor_for("threading") is pools.thread_pool()
    assert pools.executor_for("multiprocessing") is pools.process_pool()


def test_process_pool_never_plain_forks_the_django_process() -> None:
    method = pools.process_pool()._mp_context.get_start_method()

    assert method in {"forkserver", "spawn"}


def test_pool_workers_run_opencv_single_threaded() -> None:
    assert pools.process_pool().submit(cv2.getNumThreads).result(timeout=60) == 1
    assert pools.thread_pool().submit(cv2.getNumThreads).result(timeout=60) == 1


def test_multiprocessing_mode_recovers_after_a_pool_process_is_killed(
    api, upload, png_bytes
) -> None:
    ids = upload(("a.png", png_bytes(seed=1)), ("b.png", png_bytes(seed=2)))
    body = {**SEED, "images": ids}
    assert api.post("/api/process-batch/multiprocessing/", body, format="json").json()[
        "status"] == "completed"
    pool = pools.process_pool()
    # Given one of the pool's processes is killed while idle (OOM killer, operator)
    victim = next(iter(pool._processes.values()))
    os.kill(victim.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not pool._broken and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool._broken

    # When the next batch arrives, it runs on a fresh pool
    response = api.post("/api/process-batch/multiprocessing/", body, format="json")

    assert response.json()["status"] == "completed"
    assert pools.process_pool() is not pool
