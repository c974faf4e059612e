"""The queue protocol against a real Redis server: every state change and its counters."""

from __future__ import annotations

import time

import pytest

from distributed.errors import IdempotencyKeyReused, NotFound, QueueFull
from distributed.ids import new_job_id
from distributed.jobs import get_job
from distributed.messages import TaskResult
from distributed.queue import Lease, stream_order
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import noop_tasks, submit_tasks


def result(worker: str = "w") -> TaskResult:
    return TaskResult(duration_ms=1.0, worker=worker, attempt=1)


def test_submitted_tasks_are_pending_and_counted(queue, redis_client, queue_config):
    job = submit_tasks(queue, 5)
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["accepted"] == 5
    assert stats["pending:normal"] == 5
    assert redis_client.llen(queue_config.keys.job_tasks(job)) == 5


def test_fetch_then_complete_moves_a_task_to_completed(queue, redis_client, queue_config):
    job = submit_tasks(queue, 2)
    [d] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    assert d.attempt == 1 and d.task_id == f"{job}.0" and d.priority == "normal"
    assert assert_counts_add_up(redis_client, queue_config)["running"] == 1
    assert queue.complete(d, result()) is True
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["completed"] == 1 and stats["running"] == 0 and stats["pending:normal"] == 1
    [task, _] = get_job(redis_client, queue_config, job)["tasks"]
    assert task["result"] == result()


def test_completion_from_a_former_owner_is_fenced(queue, redis_client, queue_config):
    submit_tasks(queue, 1)
    [old] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    time.sleep(queue_config.lease_s + 0.1)
    [new] = queue.claim_expired(consumer="w2", owner="w2/b")
    assert new.task_id == old.task_id and new.attempt == 2
    assert queue.renew([old], consumer="w1") == [Lease.TAKEN]
    assert queue.complete(old, result("old")) is False
    assert queue.complete(new, result("new")) is True
    assert queue.complete(new, result("again")) is False
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["completed"] == 1 and stats["fenced"] == 2 and stats["reclaimed"] == 1


def test_renewed_lease_is_not_reclaimed(queue, redis_client, queue_config):
    submit_tasks(queue, 1)
    [d] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    for _ in range(4):
        time.sleep(queue_config.lease_s / 3)
        assert queue.renew([d], consumer="w1") == [Lease.RENEWED]
    assert queue.claim_expired(consumer="w2", owner="w2/b") == []


def test_renewal_tells_a_finished_task_from_one_taken_by_another_owner(queue, queue_config):
    # Given four deliveries: one in hand, one completed, one retried and one handed back
    submit_tasks(queue, 4)
    held, completed, retried, released = queue.fetch(consumer="w1", owner="w1/a", count=4)
    queue.complete(completed, result())
    queue.fail(retried, kind="OSError", message="disk", permanent=False, retry_in_s=0)
    queue.release(released)
    # Then renewing says: still ours, and the others are gone (not lost to someone)
    assert queue.renew([held, completed, retried, released], consumer="w1") == [
        Lease.RENEWED, Lease.GONE, Lease.GONE, Lease.GONE]
    # When the handed-back and the retried tasks run again under another worker
    queue.promote_due()
    again = queue.fetch(consumer="w2", owner="w2/b", count=2)
    assert {d.task_id for d in again} == {retried.task_id, released.task_id}
    # Then the old deliveries' leases are reported taken
    assert queue.renew([retried, released], consumer="w1") == [Lease.TAKEN, Lease.TAKEN]


def test_transient_failure_is_delayed_then_promoted_then_dead_after_max(
    queue, redis_client, queue_config
):
    submit_tasks(queue, 1)
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
    submit_tasks(queue, 1)
    [d] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    assert queue.fail(d, kind="corrupt_image", message="bad", permanent=True,
                      retry_in_s=1) == "dead"
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["dead"] == 1 and stats.get("retried", 0) == 0


def test_released_task_goes_back_to_its_priority_without_counting_an_attempt(
    queue, redis_client, queue_config
):
    submit_tasks(queue, 1, priority="low")
    [d] = queue.fetch(consumer="w1", owner="w1/a", count=1)
    assert queue.release(d) is True
    assert assert_counts_add_up(redis_client, queue_config)["pending:low"] == 1
    [again] = queue.fetch(consumer="w2", owner="w2/a", count=1)
    assert again.task_id == d.task_id and again.attempt == 1 and again.priority == "low"


def test_high_priority_is_fetched_before_low(queue):
    low = submit_tasks(queue, 3, priority="low")
    high = submit_tasks(queue, 3, priority="high")
    got = queue.fetch(consumer="w1", owner="w1/a", count=4, fetch_no=0)
    assert [d.job_id for d in got] == [high] * 3 + [low]


def test_low_priority_gets_a_turn_every_tenth_fetch():
    orders = [stream_order(n)[0] for n in range(20)]
    assert orders.count("low") == 2 and orders.count("normal") == 2
    assert orders.count("high") == 16


def test_cap_on_open_tasks_refuses_the_whole_batch(queue, redis_client, queue_config):
    submit_tasks(queue, 990)
    over = new_job_id()
    with pytest.raises(QueueFull) as info:
        submit_tasks(queue, 20, job_id=over)
    assert info.value.retry_after_s >= 1
    assert not redis_client.exists(queue_config.keys.job(over))
    assert assert_counts_add_up(redis_client, queue_config)["accepted"] == 990


def test_idempotency_key_with_the_same_fingerprint_returns_the_first_job(
    queue, redis_client, queue_config
):
    job = new_job_id()
    first = queue.submit(job_id=job, priority="normal", messages=noop_tasks(job, 2),
                         job_fields={}, idempotency_key="abc", fingerprint="f1")
    other = new_job_id()
    again = queue.submit(job_id=other, priority="normal", messages=noop_tasks(other, 1),
                         job_fields={}, idempotency_key="abc", fingerprint="f1")
    assert again.duplicate and again.job_id == first.job_id == job
    assert queue.find_idempotent("abc", "f1") == job
    assert queue.find_idempotent("unused", "f1") is None
    assert assert_counts_add_up(redis_client, queue_config)["accepted"] == 2


def test_idempotency_key_with_another_fingerprint_is_refused(queue, redis_client, queue_config):
    job = new_job_id()
    queue.submit(job_id=job, priority="normal", messages=noop_tasks(job, 1), job_fields={},
                 idempotency_key="abc", fingerprint="f1")
    other = new_job_id()
    with pytest.raises(IdempotencyKeyReused):
        queue.submit(job_id=other, priority="normal", messages=noop_tasks(other, 1),
                     job_fields={}, idempotency_key="abc", fingerprint="f2")
    with pytest.raises(IdempotencyKeyReused):
        queue.find_idempotent("abc", "f2")
    assert not redis_client.exists(queue_config.keys.job(other))
    assert assert_counts_add_up(redis_client, queue_config)["accepted"] == 1


def test_messages_must_belong_to_the_job_they_are_submitted_with(queue, redis_client):
    job, other = new_job_id(), new_job_id()
    with pytest.raises(ValueError):
        queue.submit(job_id=job, priority="normal", messages=noop_tasks(other, 1),
                     job_fields={})
    with pytest.raises(ValueError):
        queue.submit(job_id="job_a", priority="normal", messages=noop_tasks(job, 1),
                     job_fields={})
    assert redis_client.dbsize() == len(queue.keys.queues())  # only the empty streams


def test_poison_task_is_dead_lettered_after_too_many_lost_leases(
    queue, redis_client, queue_config
):
    submit_tasks(queue, 1)
    queue.fetch(consumer="w1", owner="w1/a", count=1)
    for i in range(queue_config.max_attempts):
        time.sleep(queue_config.lease_s + 0.1)
        got = queue.claim_expired(consumer=f"w{i + 2}", owner=f"w{i + 2}/x")
        if i < queue_config.max_attempts - 1:
            assert len(got) == 1
    assert got == []
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["dead"] == 1


def test_job_cancelled_after_a_task_completed_ends_cancelled_with_its_counts(
    queue, redis_client, queue_config
):
    job = submit_tasks(queue, 4)
    running, failing = queue.fetch(consumer="w1", owner="w1/a", count=2)
    queue.fail(failing, kind="OSError", message="disk", permanent=False, retry_in_s=60)
    # Given one running, one delayed and two pending tasks, when the job is cancelled
    assert queue.cancel_job(job) == 3
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["cancelled"] == 3 and stats["running"] == 1 and stats["pending:normal"] == 0
    assert get_job(redis_client, queue_config, job)["status"] == "running"
    # then nothing more is delivered, and the running task still completes
    assert queue.fetch(consumer="w2", owner="w2/a", count=5) == []
    assert queue.promote_due() == 0
    assert queue.complete(running, result()) is True
    # and the job says it was cancelled, not that it completed with errors
    record = get_job(redis_client, queue_config, job)
    assert record["status"] == "cancelled"
    assert record["counts"] == {"total": 4, "completed": 1, "dead": 0, "cancelled": 3}
    assert_counts_add_up(redis_client, queue_config)


def test_cancelled_entry_already_fetched_is_dropped_at_start(queue, redis_client, queue_config):
    job = submit_tasks(queue, 1)
    entries, _ = queue.take_entries(consumer="w1", count=1)
    assert len(entries) == 1  # fetched, not yet started
    assert queue.cancel_job(job) == 1
    assert queue._start(entries, consumer="w1", owner="w1/a") == []
    assert assert_counts_add_up(redis_client, queue_config)["cancelled"] == 1


@pytest.mark.parametrize("job_id", ["job_nope", new_job_id()])
def test_cancelling_an_unknown_job_raises_not_found(queue, job_id):
    with pytest.raises(NotFound):
        queue.cancel_job(job_id)


def test_malformed_job_ids_name_nothing_even_when_they_match_another_key(
    queue, redis_client, queue_config
):
    # Given a job whose task list lives at "<prefix>:job:<id>:tasks"
    job = submit_tasks(queue, 2)
    # Then "<id>:tasks" is no job id: reading or cancelling it finds nothing
    assert get_job(redis_client, queue_config, f"{job}:tasks") is None
    with pytest.raises(NotFound):
        queue.cancel_job(f"{job}:tasks")
    assert assert_counts_add_up(redis_client, queue_config)["pending:normal"] == 2

