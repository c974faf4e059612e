"""The callback outbox of distributed jobs ({p}:callbacks) on a real Redis: every script that
can settle a job puts a job with a callback_url in it, in the same step; claims are leased and
fenced; the counters of the queue are untouched."""

from __future__ import annotations

import time

import pytest

from distributed.callbacks import CallbackOutbox, callback_view
from distributed.dead_letters import discard_dead_letters
from distributed.ids import new_job_id
from distributed.messages import TaskResult
from distributed.queue import Queue
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import noop_tasks

HOOK = "https://hooks.example.com/imgproc"


@pytest.fixture
def outbox(queue: Queue, redis_client, queue_config) -> CallbackOutbox:
    return CallbackOutbox(redis_client, queue_config, queue.scripts)


def submit(queue: Queue, count: int = 2, *, callback: bool = True) -> str:
    job_id = new_job_id()
    fields = {"mode": "distributed"}
    if callback:
        fields.update(callback_url=HOOK, callback_base="http://api.test/")
    queue.submit(job_id=job_id, priority="normal", messages=noop_tasks(job_id, count),
                 job_fields=fields)
    return job_id


def due(redis_client, queue_config) -> dict[str, float]:
    return {k.decode(): v for k, v in
            redis_client.zrange(queue_config.keys.callbacks(), 0, -1, withscores=True)}


def job_fields(redis_client, queue_config, job_id: str) -> dict[str, str]:
    raw = redis_client.hgetall(queue_config.keys.job(job_id))
    return {k.decode(): v.decode() for k, v in raw.items()}


def result() -> TaskResult:
    return TaskResult(duration_ms=1.0, worker="w", attempt=1)


def completed_job(queue: Queue) -> str:
    """A one-task job with a callback, its task completed: due in the outbox."""
    job_id = submit(queue, 1)
    [d] = queue.fetch(consumer="w", owner="w/1", count=1)
    queue.complete(d, result())
    return job_id


def test_a_job_is_due_once_its_last_task_completes_not_before(queue, redis_client, queue_config):
    job_id = submit(queue, 2)
    first, second = queue.fetch(consumer="w", owner="w/1", count=2)

    queue.complete(first, result())
    assert due(redis_client, queue_config) == {}
    assert callback_view(job_fields(redis_client, queue_config, job_id))["state"] == "waiting"

    queue.complete(second, result())
    assert list(due(redis_client, queue_config)) == [job_id]
    view = callback_view(job_fields(redis_client, queue_config, job_id))
    assert view["state"] == "pending" and view["attempts"] == []
    assert_counts_add_up(redis_client, queue_config)


def test_a_job_without_a_callback_url_is_never_due(queue, redis_client, queue_config):
    submit(queue, 1, callback=False)
    [d] = queue.fetch(consumer="w", owner="w/1", count=1)
    queue.complete(d, result())
    assert due(redis_client, queue_config) == {}


@pytest.mark.parametrize("how", ["dead", "cancel", "discard", "lease_expired"])
def test_every_way_a_job_can_end_makes_it_due(how, queue, redis_client, queue_config):
    job_id = submit(queue, 1)
    if how == "cancel":
        queue.cancel_job(job_id)
    elif how == "lease_expired":
        queue.fetch(consumer="w1", owner="w1/a", count=1)
        for i in range(queue_config.max_attempts):
            time.sleep(queue_config.lease_s + 0.1)
            queue.claim_expired(consumer=f"w{i + 2}", owner=f"w{i + 2}/x")
    else:
        [d] = queue.fetch(consumer="w", owner="w/1", count=1)
        queue.fail(d, kind="boom", message="boom", permanent=True, retry_in_s=0)
        if how == "discard":
            assert list(due(redis_client, queue_config)) == [job_id]
            redis_client.delete(queue_config.keys.callbacks())  # as if delivered
            assert discard_dead_letters(redis_client, queue_config, None) == 1
    assert list(due(redis_client, queue_config)) == [job_id]
    assert_counts_add_up(redis_client, queue_config)


def test_a_claim_is_leased_and_a_late_record_from_it_moves_nothing(
    queue, outbox, redis_client, queue_config
):
    job_id = completed_job(queue)

    [claim] = outbox.claim(lease_ms=150, limit=10)
    assert claim.job_id == job_id and claim.url == HOOK and claim.tries == 0
    assert claim.base_url == "http://api.test/" and claim.tenant == "anonymous"
    assert outbox.claim(lease_ms=150, limit=10) == []  # held
    time.sleep(0.2)
    [again] = outbox.claim(lease_ms=10_000, limit=10)  # the lease ran out: another takes it
    assert again.token != claim.token

    attempt = {"at_ms": 1, "status_code": 500, "error": None, "duration_ms": 2.0}
    assert outbox.record(claim, attempt, "failed") == "stale"
    assert list(due(redis_client, queue_config)) == [job_id]  # still the live claim's
    assert outbox.record(again, {**attempt, "status_code": 200}, "delivered") == "recorded"
    assert due(redis_client, queue_config) == {}
    view = callback_view(job_fields(redis_client, queue_config, job_id))
    assert view["state"] == "delivered"
    assert [a["status_code"] for a in view["attempts"]] == [500, 200]  # both are history


def test_a_retry_is_due_at_its_time_and_counts_the_tries(queue, outbox, redis_client,
                                                        queue_config):
    job_id = completed_job(queue)
    [claim] = outbox.claim(lease_ms=10_000, limit=10)
    retry_at = int(time.time() * 1000) + 300

    assert outbox.record(claim, {"at_ms": 1}, "retry", retry_at_ms=retry_at) == "recorded"

    assert due(redis_client, queue_config) == {job_id: retry_at}
    view = callback_view(job_fields(redis_client, queue_config, job_id))
    assert view["state"] == "pending" and view["next_attempt_at_ms"] == retry_at
    assert outbox.claim(lease_ms=1000, limit=10) == []
    time.sleep(0.35)
    [later] = outbox.claim(lease_ms=1000, limit=10)
    assert later.tries == 1


def test_only_the_newest_attempts_are_kept(queue, outbox, redis_client, queue_config):
    job_id = completed_job(queue)
    for n in range(5):
        [claim] = outbox.claim(lease_ms=1000, limit=10)
        outbox.record(claim, {"at_ms": n}, "retry", retry_at_ms=0, attempts_kept=3)
    view = callback_view(job_fields(redis_client, queue_config, job_id))
    assert [a["at_ms"] for a in view["attempts"]] == [2, 3, 4]


def test_a_deleted_job_leaves_the_outbox_and_a_record_for_it_is_dropped(
    queue, outbox, redis_client, queue_config
):
    job_id = completed_job(queue)
    [claim] = outbox.claim(lease_ms=1000, limit=10)

    queue.delete_job(job_id, "anonymous")

    assert due(redis_client, queue_config) == {}
    assert outbox.record(claim, {"at_ms": 1}, "delivered") == "gone"
    assert not redis_client.exists(queue_config.keys.job(job_id))
