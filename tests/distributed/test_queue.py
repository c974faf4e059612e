"""The queue protocol against a real Redis server: every state change and its counters."""

from __future__ import annotations

import time

import pytest

from distributed.errors import QueueFull
from distributed.keys import Keys
from distributed.queue import Queue, stream_order
from tests.support.redis import assert_counts_add_up


def submit(queue: Queue, n: int = 3, *, priority: str = "normal", job: str = "job_a",
           key: str | None = None) -> str:
    payloads = [{"kind": "noop", "index": i} for i in range(n)]
    return queue.submit(job_id=job, priority=priority, payloads=payloads,
                        job_fields={"mode": "distributed"}, idempotency_key=key).job_id


def test_submitted_tasks_are_pending_and_counted(queue, redis_client, queue_config):
    submit(queue, 5)
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["accepted"] == 5
    assert stats["pending:normal"] == 5
    assert redis_client.llen(Keys("t").job_tasks("job_a")) == 5


def test_fetch_then_complete_moves_a_task_to_completed(queue, redis_client, queue_config):
    submit(queue, 2)
    [d] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    assert d.attempt == 1 and d.payload["index"] == 0
    assert assert_counts_add_up(redis_client, queue_config)["running"] == 1
    assert queue.complete(d, {"ok": True}) is True
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["completed"] == 1 and stats["running"] == 0 and stats["pending:normal"] == 1


def test_completion_from_a_former_owner_is_fenced(queue, redis_client, queue_config):
    submit(queue, 1)
    [old] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    time.sleep(queue_config.lease_s + 0.1)
    [new] = queue.claim_expired(consumer="w2", owner="w2/b")
    assert new.task_id == old.task_id and new.attempt == 2
    assert queue.renew([old], consumer="w1") == [False]
    assert queue.complete(old, {"by": "old"}) is False
    assert queue.complete(new, {"by": "new"}) is True
    assert queue.complete(new, {"by": "again"}) is False
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["completed"] == 1 and stats["fenced"] == 2 and stats["reclaimed"] == 1


def test_renewed_lease_is_not_reclaimed(queue, redis_client, queue_config):
    submit(queue, 1)
    [d] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    for _ in range(4):
        time.sleep(queue_config.lease_s / 3)
        assert queue.renew([d], consumer="w1") == [True]
    assert queue.claim_expired(consumer="w2", owner="w2/b") == []


def test_transient_failure_is_delayed_then_promoted_then_dead_after_max(
    queue, redis_client, queue_config
):
    submit(queue, 1)
    verdicts = []
    for _ in range(queue_config.max_attempts):
        deadline = time.time() + 5
        got = []
        while not got and time.time() < deadline:
            queue.promote_due()
            got = queue.fetch(consumer="w1", owner="w1/a", count=1)
        [d] = got
        verdicts.append(queue.fail(d, kind="OSError", message="disk", permanent=False,
                                   retry_in_s=0.05))
        assert_counts_add_up(redis_client, queue_config)
    assert verdicts == ["retry"] * queue_config.max_retries + ["dead"]
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["dead"] == 1 and stats["retried"] == queue_config.max_retries


def test_permanent_failure_goes_straight_to_dead_letters(queue, redis_client, queue_config):
    submit(queue, 1)
    [d] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    assert queue.fail(d, kind="corrupt_image", message="bad", permanent=True,
                      retry_in_s=1) == "dead"
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["dead"] == 1 and stats.get("retried", 0) == 0


def test_released_task_goes_back_without_counting_an_attempt(queue, redis_client, queue_config):
    submit(queue, 1)
    [d] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    assert queue.release(d) is True
    assert assert_counts_add_up(redis_client, queue_config)["pending:normal"] == 1
    [again] = queue.fetch(consumer="w2", owner="w2/a", count=1)
    assert again.task_id == d.task_id and again.attempt == 1


def test_high_priority_is_fetched_before_low(queue):
    submit(queue, 3, priority="low", job="job_low")
    submit(queue, 3, priority="high", job="job_high")
    got = queue.fetch(consumer="w1", owner="w1/a", count=4, fetch_no=0)
    assert [d.job_id for d in got] == ["job_high"] * 3 + ["job_low"]


def test_low_priority_gets_a_turn_every_tenth_fetch():
    orders = [stream_order(n)[0] for n in range(20)]
    assert orders.count("low") == 2 and orders.count("normal") == 2
    assert orders.count("high") == 16


def test_cap_on_open_tasks_refuses_the_whole_batch(queue, redis_client, queue_config):
    submit(queue, 990, job="job_big")
    with pytest.raises(QueueFull) as info:
        submit(queue, 20, job="job_over")
    assert info.value.retry_after_s >= 1
    assert not redis_client.exists(Keys("t").job("job_over"))
    assert assert_counts_add_up(redis_client, queue_config)["accepted"] == 990


def test_idempotency_key_returns_the_first_job(queue, redis_client, queue_config):
    first = submit(queue, 2, job="job_1", key="abc")
    again = queue.submit(job_id="job_2", priority="normal", payloads=[{"kind": "noop"}],
                         job_fields={}, idempotency_key="abc")
    assert again.duplicate and again.job_id == first
    assert assert_counts_add_up(redis_client, queue_config)["accepted"] == 2


def test_poison_task_is_dead_lettered_after_too_many_lost_leases(
    queue, redis_client, queue_config
):
    submit(queue, 1)
    queue.fetch(consumer="w1", owner="w1/a", count=1)
    for i in range(queue_config.max_attempts):
        time.sleep(queue_config.lease_s + 0.1)
        got = queue.claim_expired(consumer=f"w{i + 2}", owner=f"w{i + 2}/x")
        if i < queue_config.max_attempts - 1:
            assert len(got) == 1
    assert got == []
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["dead"] == 1


def test_cancel_stops_pending_and_delayed_tasks_but_not_running_ones(
    queue, redis_client, queue_config
):
    submit(queue, 4, job="job_c")
    running, failing = queue.fetch(consumer="w1", owner="w1/a", count=2)
    queue.fail(failing, kind="OSError", message="disk", permanent=False, retry_in_s=60)
    # Given one running, one delayed and two pending tasks, when the job is cancelled
    assert queue.cancel_job("job_c") == 3
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["cancelled"] == 3 and stats["running"] == 1 and stats["pending:normal"] == 0
    # then nothing more is delivered, and the running task still completes
    assert queue.fetch(consumer="w2", owner="w2/a", count=5) == []
    assert queue.promote_due() == 0
    assert queue.complete(running, {}) is True
    from distributed.jobs import get_job

    job = get_job(redis_client, queue_config, "job_c")
    assert job["status"] == "completed_with_errors"
    assert job["counts"] == {"total": 4, "completed": 1, "dead": 0, "cancelled": 3}
    assert_counts_add_up(redis_client, queue_config)


def test_cancelled_entry_already_fetched_is_dropped_at_start(queue, redis_client, queue_config):
    submit(queue, 1, job="job_f")
    entries = queue.scripts["fetch"](keys=queue.keys.queues(), args=["workers", "w1", 1])
    assert len(entries) == 1  # fetched, not yet started
    assert queue.cancel_job("job_f") == 1
    assert queue._start(entries, consumer="w1", owner="w1/a") == []
    assert assert_counts_add_up(redis_client, queue_config)["cancelled"] == 1


def test_cancelling_an_unknown_job_raises_not_found(queue):
    from distributed.errors import NotFound

    with pytest.raises(NotFound):
        queue.cancel_job("job_nope")
