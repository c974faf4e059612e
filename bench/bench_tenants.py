#!/usr/bin/env python
"""Benchmarks of the tenants' fair share and of retention in Redis (issue "Front door"):

  (a) fairness  latency of tenant B's 10-task job submitted behind tenant A's 20,000 no-op
                tasks, with 2 workers: once with the fair-share scheduler (A and B are two
                tenants), once as a single FIFO (both submitted as one tenant), same machine.
  (b) memory    Redis ``used_memory`` sampled while 500,000 no-op tasks go through 2 workers
                with a short retention (RETENTION_DAYS of a few seconds): it must stay flat.

    python bench/bench_tenants.py                          # both, full size
    python bench/bench_tenants.py --backlog 2000 --tasks 20000 --retention-s 2   # quick

The queue overhead after the scheduler (tasks/s) is part (b) of bench_distributed.py. Starts its
own redis-server and worker processes (bench_distributed.cluster), and stops them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_distributed import cluster, noop_tasks, wait_done

from distributed.ids import new_job_id
from distributed.listing import trim_expired
from distributed.queue import Queue

CHUNK = 5000


def completed(queue: Queue, job_ids: list[str]) -> int:
    pipe = queue.client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hget(queue.keys.job(job_id), "completed")
    return sum(int(v or 0) for v in pipe.execute())


def submit(queue: Queue, count: int, tenant: str) -> list[str]:
    jobs = []
    for n in range(0, count, CHUNK):
        job_id = new_job_id()
        queue.submit(job_id=job_id, priority="normal",
                     messages=noop_tasks(job_id, min(CHUNK, count - n)), job_fields={},
                     tenant=tenant)
        jobs.append(job_id)
    return jobs


# --- (a) fairness ----------------------------------------------------------------------------


def one_fairness_run(tmp: Path, backlog: int, *, fair: bool) -> dict[str, float]:
    env = {"MAX_QUEUED_TASKS": str(backlog * 2), "TENANT_MAX_OPEN_TASKS": str(backlog * 2)}
    with cluster(tmp, 2, **env) as (queue, client, _):
        a_jobs = submit(queue, backlog, "a")
        while completed(queue, a_jobs) == 0:  # the workers are busy on A's backlog
            time.sleep(0.001)
        [b_job] = submit(queue, 10, "b" if fair else "a")
        started = time.perf_counter()
        a_before = completed(queue, a_jobs)
        latency = wait_done(client, queue.config, [b_job]) - started
        a_after = completed(queue, a_jobs)
    return {"latency_s": latency, "a_done_meanwhile": a_after - a_before,
            "a_pending_at_end": backlog - a_after}


def bench_fairness(tmp: Path, backlog: int) -> dict[str, dict[str, float]]:
    out = {}
    for label, fair in (("fair share (2 tenants)", True), ("single FIFO (1 tenant)", False)):
        r = out[label] = one_fairness_run(tmp, backlog, fair=fair)
        print(f"  {label}: B's 10 tasks done {r['latency_s'] * 1000:.1f} ms after submission; "
              f"A completed {r['a_done_meanwhile']:.0f} meanwhile, {r['a_pending_at_end']:.0f} "
              f"of A's {backlog} still open", flush=True)
    fair_s = out["fair share (2 tenants)"]["latency_s"]
    fifo_s = out["single FIFO (1 tenant)"]["latency_s"]
    print(f"  FIFO / fair share latency: {fifo_s / fair_s:.0f}x (reference: fair share should "
          f"cost about one task per worker, FIFO the whole backlog)", flush=True)
    return out


# --- (b) memory ------------------------------------------------------------------------------


def bench_memory(tmp: Path, tasks: int, retention_s: float, samples: int = 10,
                 window: int = 5_000) -> list[int]:
    env = {"RETENTION_DAYS": repr(retention_s / 86400), "MAX_QUEUED_TASKS": str(window * 2),
           "TENANT_MAX_OPEN_TASKS": str(window * 2)}
    memory: list[int] = []
    with cluster(tmp, 2, **env) as (queue, client, _):
        every = max(1, tasks // samples)
        submitted, open_jobs, next_sample = 0, [], every
        while submitted < tasks or open_jobs:
            # Keep about `window` tasks open: the backlog is bounded, the flow of work is not, so
        # what grows, if anything, is what finished tasks leave behind.
            while submitted < tasks and (submitted - done_so_far(queue)) < window:
                size = min(500, tasks - submitted)
                job_id = new_job_id()
                queue.submit(job_id=job_id, priority="normal",
                             messages=noop_tasks(job_id, size), job_fields={},
                             tenant=f"t{submitted // 500 % 4}")
                open_jobs.append(job_id)
                submitted += size
            if open_jobs:
                wait_done(client, queue.config, open_jobs[:1])
                open_jobs.pop(0)
            trim_expired(client, queue.config, oldest=200)  # as reading the job list does
            done = done_so_far(queue)
            if done >= next_sample:
                used = int(client.info("memory")["used_memory"])
                memory.append(used)
                keys = client.dbsize()
                print(f"  {done:>8} tasks done: used_memory {used / 2**20:7.2f} MiB, "
                      f"{keys} keys, {submitted - done} tasks open", flush=True)
                next_sample += every
    half = memory[len(memory) // 2:]
    print(f"  second half of the run: min {min(half) / 2**20:.2f} MiB, max "
          f"{max(half) / 2**20:.2f} MiB (reference: flat, i.e. max/min close to 1 — here "
          f"{max(half) / min(half):.2f}); retention {retention_s} s", flush=True)
    return memory


def done_so_far(queue: Queue) -> int:
    return int(queue.client.hget(queue.keys.stats(), "completed") or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["fairness", "memory"], action="append")
    parser.add_argument("--backlog", type=int, default=20_000, help="(a): A's queued tasks")
    parser.add_argument("--tasks", type=int, default=500_000, help="(b): tasks in all")
    parser.add_argument("--retention-s", type=float, default=10.0, help="(b): retention")
    args = parser.parse_args(argv)
    parts = args.only or ["fairness", "memory"]
    with tempfile.TemporaryDirectory(prefix="bench-tenants-") as tmp:
        if "fairness" in parts:
            print(f"(a) B's 10-task job behind A's {args.backlog} no-op tasks, 2 workers")
            bench_fairness(Path(tmp), args.backlog)
        if "memory" in parts:
            print(f"(b) Redis used_memory over {args.tasks} no-op tasks, 2 workers")
            bench_memory(Path(tmp), args.tasks, args.retention_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
