"""Draining a real worker process through Redis (what POST /api/workers/<id>/drain/ does):
the task in hand completes, nothing is lost, the worker deregisters and exits 0; meanwhile the
status says ``draining``, and its timeline holds the tasks it ran."""

from __future__ import annotations

import pytest

from distributed.ids import new_job_id
from distributed.jobs import get_job
from distributed.registry import Drain, Registry
from distributed.status import cluster_status
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import sleep_tasks
from tests.support.workers import wait_until

pytestmark = pytest.mark.slow


def worker_view(client, config, worker_id: str) -> dict:
    return next(w for w in cluster_status(client, config)["workers"] if w["id"] == worker_id)


def test_a_drained_worker_finishes_its_task_hands_nothing_lost_and_exits_zero(
    queue, redis_client, queue_config, start_worker
):
    # Given two workers and a job of four 1.5 s tasks, w1 running one of them
    job_id = new_job_id()
    w1 = start_worker("w1", WORKER_PREFETCH="4")
    queue.submit(job_id=job_id, priority="normal", messages=sleep_tasks(job_id, 1.5, 4),
                 job_fields={"mode": "distributed"})

    def w1_task() -> str | None:
        tasks = get_job(redis_client, queue_config, job_id)["tasks"]
        return next((t["id"] for t in tasks
                     if t["state"] == "running" and t["worker"] == "w1"), None)

    in_hand = wait_until(w1_task, 20, message="w1 to start a task")
    w2 = start_worker("w2")
    # When w1 is asked to drain
    assert Registry(redis_client, queue_config).request_drain("w1") is Drain.REQUESTED
    # Then the status says so at once, and it is not restarted by an unexpected exit code
    assert worker_view(redis_client, queue_config, "w1")["state"] == "draining"
    assert w1.wait(30) == 0, w1.log()
    assert w1.logged("worker.drain_requested")
    job = get_job(redis_client, queue_config, job_id)
    task = next(t for t in job["tasks"] if t["id"] == in_hand)
    # the task in hand was finished by w1, on its first attempt
    assert task["state"] == "completed" and task["worker"] == "w1" and task["attempts"] == 1
    view = worker_view(redis_client, queue_config, "w1")
    assert view["status"] == "stopped" and view["state"] == "drained", view
    assert Registry(redis_client, queue_config).request_drain("w1") is Drain.GONE
    # and w2 does the rest: every task completes once, none lost
    done = wait_until(lambda: (j := get_job(redis_client, queue_config, job_id))["status"]
                      == "completed" and j, 40, message="the job to complete")
    assert sorted(t["state"] for t in done["tasks"]) == ["completed"] * 4
    assert {t["worker"] for t in done["tasks"]} <= {"w1", "w2"}
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["completed"] == 4 and stats.get("fenced", 0) == 0
    # The timeline of w1 holds its task, with its outcome and times
    spans = Registry(redis_client, queue_config).recent_tasks("w1")
    assert in_hand in [s.task for s in spans]
    span = next(s for s in spans if s.task == in_hand)
    assert span.outcome == "completed" and span.job == job_id
    assert 1400 <= span.ended_ms - span.started_ms < 10_000
    assert w2.proc.poll() is None
