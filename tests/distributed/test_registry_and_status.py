"""Worker registry, health rules, dead letters and the status summary on a real Redis."""

from __future__ import annotations

import time

from distributed.dead_letters import (
    discard_dead_letters,
    list_dead_letters,
    requeue_dead_letters,
)
from distributed.health import cluster_alerts, worker_health
from distributed.jobs import get_job, job_status
from distributed.messages import TaskResult
from distributed.registry import Registry, WorkerInfo
from distributed.retry import compute_backoff
from distributed.status import cluster_status
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import submit_tasks

DONE = TaskResult(duration_ms=1.0, worker="w", attempt=1)


def info(worker_id: str = "w1") -> WorkerInfo:
    return WorkerInfo(id=worker_id, hostname="h", pid=1, version="0", concurrency=1,
                      filters=("blur",), started_at_ms=int(time.time() * 1000), instance="x")


def test_registered_worker_is_healthy_then_dead_when_silent(redis_client, queue_config):
    registry = Registry(redis_client, queue_config)
    registry.register(info())
    [w] = cluster_status(redis_client, queue_config)["workers"]
    assert w["id"] == "w1" and w["status"] == "healthy"
    time.sleep(queue_config.heartbeat_timeout_s + 0.2)
    [w] = cluster_status(redis_client, queue_config)["workers"]
    assert w["status"] == "dead" and "no heartbeat" in w["status_rule"]


def test_reaping_counts_a_dead_worker_once_and_keeps_it_listed(redis_client, queue_config):
    registry = Registry(redis_client, queue_config)
    registry.register(info("w1"))
    registry.register(info("w2"))
    time.sleep(queue_config.heartbeat_timeout_s + 0.2)
    registry.heartbeat(info("w2"), {"state": "idle"})
    assert registry.reap() == ["w1"]
    assert registry.reap() == []
    status = cluster_status(redis_client, queue_config)
    assert {w["id"]: w["status"] for w in status["workers"]} == {"w1": "dead", "w2": "healthy"}
    assert status["queue"]["workers_reaped"] == 1


def test_worker_restarted_with_the_same_id_rejoins_as_healthy(redis_client, queue_config):
    registry = Registry(redis_client, queue_config)
    registry.register(info("w1"))
    time.sleep(queue_config.heartbeat_timeout_s + 0.2)
    registry.reap()
    registry.register(info("w1"))
    [w] = cluster_status(redis_client, queue_config)["workers"]
    assert w["status"] == "healthy"


def test_deregistered_worker_is_shown_as_stopped(redis_client, queue_config):
    registry = Registry(redis_client, queue_config)
    registry.register(info("w1"))
    registry.deregister("w1")
    [w] = cluster_status(redis_client, queue_config)["workers"]
    assert w["status"] == "stopped"


def test_health_rules_decide_by_heartbeat_age_and_failure_rate():
    def status(age: float, total: int = 0, failed: int = 0) -> str:
        return worker_health(heartbeat_age_s=age, interval_s=2, timeout_s=6,
                             recent_total=total, recent_failed=failed).status

    assert status(1.0) == "healthy"
    assert status(3.5) == "degraded"
    assert status(4.5) == "unhealthy"
    assert status(6.5) == "dead"
    assert status(1.0, total=10, failed=1) == "degraded"
    assert status(1.0, total=10, failed=5) == "unhealthy"
    assert status(1.0, total=3, failed=3) == "healthy"  # too few tasks to judge


def test_alerts_fire_on_no_worker_dead_letters_and_failure_rate():
    codes = [a.code for a in cluster_alerts(
        live_workers=0, open_tasks=3, dead_letters=11, dead_letter_threshold=10,
        recent_total=10, recent_failed=5, failure_rate_threshold=0.2)]
    assert codes == ["no_live_worker", "dead_letters", "failure_rate"]
    assert cluster_alerts(live_workers=1, open_tasks=0, dead_letters=0, dead_letter_threshold=10,
                          recent_total=10, recent_failed=0, failure_rate_threshold=0.2) == []


def test_backoff_grows_exponentially_with_bounded_jitter():
    import random

    rng = random.Random(1)
    for attempt in range(1, 8):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        delays = [compute_backoff(attempt, base_s=0.5, max_s=30, rng=rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1


def test_job_status_is_derived_from_its_counters():
    assert job_status(3, 0, 0, 0, False) == "queued"
    assert job_status(3, 0, 0, 2, False) == "queued"
    assert job_status(3, 1, 0, 0, True) == "running"
    assert job_status(3, 1, 0, 1, True) == "running"
    assert job_status(3, 3, 0, 0, True) == "completed"
    assert job_status(3, 2, 1, 0, True) == "completed_with_errors"
    assert job_status(3, 0, 3, 0, True) == "failed"


def test_a_job_with_any_cancelled_task_ends_cancelled():
    assert job_status(3, 0, 0, 3, False) == "cancelled"
    assert job_status(3, 2, 0, 1, True) == "cancelled"
    assert job_status(3, 1, 1, 1, True) == "cancelled"
    assert job_status(3, 0, 2, 1, True) == "cancelled"


def test_dead_letters_can_be_listed_requeued_and_discarded(queue, redis_client, queue_config):
    job = submit_tasks(queue, 3, priority="low")
    for d in queue.fetch(consumer="w", owner="w/1", count=3):
        queue.fail(d, kind="corrupt_image", message="bad bytes", permanent=True, retry_in_s=0)
    total, items = list_dead_letters(redis_client, queue_config)
    assert total == 3 and items[0]["error"]["message"] == "bad bytes"
    assert get_job(redis_client, queue_config, job)["status"] == "failed"

    assert requeue_dead_letters(redis_client, queue_config, [items[0]["id"]]) == 1
    assert discard_dead_letters(redis_client, queue_config, [items[1]["id"]]) == 1
    stats = assert_counts_add_up(redis_client, queue_config)
    assert (stats["dead"], stats["cancelled"], stats["pending:low"]) == (1, 1, 1)
    [d] = queue.fetch(consumer="w", owner="w/1", count=1)
    assert d.attempt == 1
    queue.complete(d, DONE)
    assert requeue_dead_letters(redis_client, queue_config) == 1
    [d] = queue.fetch(consumer="w", owner="w/1", count=1)
    queue.complete(d, DONE)
    record = get_job(redis_client, queue_config, job)
    assert record["counts"] == {"total": 3, "completed": 2, "dead": 0, "cancelled": 1}
    # a discarded dead letter ends as cancelled, so the job does too
    assert record["status"] == "cancelled"
    assert_counts_add_up(redis_client, queue_config)


def test_dead_letter_actions_ignore_ids_of_another_shape(queue, redis_client, queue_config):
    job = submit_tasks(queue, 1)
    [d] = queue.fetch(consumer="w", owner="w/1", count=1)
    queue.fail(d, kind="x", message="boom", permanent=True, retry_in_s=0)
    bad = [f"{job}:tasks", job, f"{job}.0:x", "../etc"]
    assert requeue_dead_letters(redis_client, queue_config, bad) == 0
    assert discard_dead_letters(redis_client, queue_config, bad) == 0
    assert assert_counts_add_up(redis_client, queue_config)["dead"] == 1


def test_dead_or_stopped_worker_shows_no_current_task(redis_client, queue_config):
    # Given two workers that last reported a task in hand
    registry = Registry(redis_client, queue_config)
    for worker_id in ("w1", "w2"):
        registry.register(info(worker_id))
        registry.heartbeat(info(worker_id), {"state": "busy", "current_task": "job_x.0"})
    # When w1 falls silent and is reaped, and w2 stops
    time.sleep(queue_config.heartbeat_timeout_s + 0.2)
    assert registry.reap() == ["w1", "w2"]
    registry.deregister("w2")
    # Then neither shows a current task, and the reaped record holds none either
    workers = {w["id"]: w for w in cluster_status(redis_client, queue_config)["workers"]}
    assert (workers["w1"]["status"], workers["w1"]["current_task"]) == ("dead", None)
    assert (workers["w2"]["status"], workers["w2"]["current_task"]) == ("stopped", None)
    assert redis_client.hget(queue_config.keys.worker("w1"), "current_task") == b""


def test_silent_worker_not_yet_reaped_shows_no_current_task(redis_client, queue_config):
    registry = Registry(redis_client, queue_config)
    registry.register(info("w1"))
    registry.heartbeat(info("w1"), {"state": "busy", "current_task": "job_x.0"})
    [w] = cluster_status(redis_client, queue_config)["workers"]
    assert w["current_task"] == "job_x.0"
    time.sleep(queue_config.heartbeat_timeout_s + 0.2)
    [w] = cluster_status(redis_client, queue_config)["workers"]
    assert (w["status"], w["current_task"]) == ("dead", None)
