"""The console's figures on a real Redis: drain requests, the history samples (one per bucket
whoever writes, capped), a worker's timeline (capped), and the alerts for a worker that died
and for a pending task left waiting."""

from __future__ import annotations

import dataclasses
import time

from distributed.history import bucket_of, history, record_sample
from distributed.keys import HISTORY_BUCKET_S, HISTORY_SAMPLES, WORKER_TASKS_KEPT
from distributed.registry import Drain, Registry, TaskSpan, WorkerInfo
from distributed.status import cluster_status
from tests.support.tasks import submit_tasks


def info(worker_id: str = "w1") -> WorkerInfo:
    return WorkerInfo(id=worker_id, hostname="h", pid=1, version="0", concurrency=1,
                      filters=("blur",), started_at_ms=int(time.time() * 1000), instance="x")


def test_drain_is_requested_of_a_live_worker_only(redis_client, queue_config):
    registry = Registry(redis_client, queue_config)
    assert registry.request_drain("nobody") is Drain.UNKNOWN
    registry.register(info("w1"))
    assert registry.heartbeat(info("w1"), {"state": "busy"}) is False
    # When a drain is asked (twice: the second finds the flag set)
    assert registry.request_drain("w1") is Drain.REQUESTED
    assert registry.request_drain("w1") is Drain.REQUESTED
    # Then the next heartbeat hands the flag to the worker, and the status shows draining
    assert registry.heartbeat(info("w1"), {"state": "busy"}) is True
    [w] = cluster_status(redis_client, queue_config)["workers"]
    assert w["state"] == "draining" and w["draining"] is True and w["status"] == "healthy"
    # Once it left, it is gone: a request is refused, and the status says it drained
    registry.deregister("w1", state="drained")
    assert registry.request_drain("w1") is Drain.GONE
    [w] = cluster_status(redis_client, queue_config)["workers"]
    assert (w["status"], w["state"], w["draining"]) == ("stopped", "drained", False)
    # A restart under the same id starts without the flag
    registry.register(info("w1"))
    assert registry.heartbeat(info("w1"), {"state": "idle"}) is False


def test_a_silent_worker_cannot_be_drained(redis_client, queue_config):
    registry = Registry(redis_client, queue_config)
    registry.register(info("w1"))
    time.sleep(queue_config.heartbeat_timeout_s + 0.2)
    assert registry.request_drain("w1") is Drain.GONE


def test_one_history_sample_per_bucket_whoever_writes_and_deltas_between(
    redis_client, queue_config, queue
):
    base = (int(time.time()) // HISTORY_BUCKET_S) * HISTORY_BUCKET_S * 1000
    # Given a sample, then three writers of the next bucket after 5 tasks were submitted
    assert record_sample(redis_client, queue_config, now=base) is True
    submit_tasks(queue, 5)
    redis_client.hincrby(queue_config.keys.stats(), "completed", 7)
    redis_client.hincrby(queue_config.keys.stats(), "failed_attempts", 2)
    later = base + HISTORY_BUCKET_S * 1000 + 10
    written = [record_sample(redis_client, queue_config, now=later + i) for i in range(3)]
    # Then one of them wrote it, and an older bucket is never written again
    assert written == [True, False, False]
    assert record_sample(redis_client, queue_config, now=base) is False
    points = history(redis_client, queue_config)["points"]
    first = next(p for p in points if p["at_ms"] == later)
    assert first["queue_depth"] == 5 and first["completed"] == 7
    assert first["failed_attempts"] == 2 and first["dead_lettered"] == 0
    assert first["interval_s"] == HISTORY_BUCKET_S + 0.01


def test_history_is_capped_at_an_hour_of_samples(redis_client, queue_config):
    start = int(time.time() * 1000) - (HISTORY_SAMPLES + 50) * HISTORY_BUCKET_S * 1000
    for i in range(HISTORY_SAMPLES + 50):
        record_sample(redis_client, queue_config, now=start + i * HISTORY_BUCKET_S * 1000)
    assert redis_client.llen(queue_config.keys.history()) == HISTORY_SAMPLES
    body = history(redis_client, queue_config)
    assert len(body["points"]) <= HISTORY_SAMPLES
    assert body["points"] == sorted(body["points"], key=lambda p: p["at_ms"])
    assert bucket_of(body["points"][-1]["at_ms"]) == bucket_of(int(time.time() * 1000))


def test_a_worker_timeline_keeps_its_newest_tasks(redis_client, queue_config):
    registry = Registry(redis_client, queue_config)
    spans = [TaskSpan(task=f"job_{'a' * 32}.{i}", job=f"job_{'a' * 32}", tenant="anonymous",
                      started_ms=i * 10, ended_ms=i * 10 + 5, outcome="completed")
             for i in range(WORKER_TASKS_KEPT + 20)]
    for span in spans:
        registry.record_tasks("w1", [span])
    kept = registry.recent_tasks("w1")
    assert len(kept) == WORKER_TASKS_KEPT
    assert kept[0] == spans[-1] and kept[-1] == spans[20]
    assert dataclasses.asdict(kept[0])["outcome"] == "completed"
    assert redis_client.ttl(queue_config.keys.worker_tasks("w1")) > 0


def test_a_dead_worker_raises_an_alert_while_another_is_alive(redis_client, queue_config):
    registry = Registry(redis_client, queue_config)
    registry.register(info("w1"))
    registry.register(info("w2"))
    time.sleep(queue_config.heartbeat_timeout_s + 0.2)
    registry.heartbeat(info("w2"), {"state": "idle"})
    assert registry.reap() == ["w1"]
    alerts = {a["code"]: a for a in cluster_status(redis_client, queue_config)["alerts"]}
    assert "worker_died" in alerts and "w1" in alerts["worker_died"]["message"]
    assert alerts["worker_died"]["severity"] == "warning"
    assert "no_live_worker" not in alerts
    # A worker that stopped on request is no alert
    registry.deregister("w2", state="drained")
    codes = [a["code"] for a in cluster_status(redis_client, queue_config)["alerts"]]
    assert codes.count("worker_died") == 1


def test_the_oldest_pending_task_raises_an_alert_past_the_threshold(
    redis_client, queue_config, queue
):
    config = dataclasses.replace(queue_config, alert_oldest_pending_s=0.5)
    status = cluster_status(redis_client, config)
    assert status["queue"]["oldest_pending_s"] is None
    submit_tasks(queue, 2, tenant="anonymous")
    submit_tasks(queue, 1, tenant="t2", priority="low")
    assert "oldest_pending" not in [a["code"] for a in cluster_status(redis_client, config)
                                    ["alerts"]]
    time.sleep(0.7)
    status = cluster_status(redis_client, config)
    assert status["queue"]["oldest_pending_s"] >= 0.6
    assert "oldest_pending" in [a["code"] for a in status["alerts"]]
