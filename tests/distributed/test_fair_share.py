"""Tenants' fair share of the workers and their caps, decided in Redis (enqueue.lua, fetch.lua),
with every counter still adding up."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
import redis

from distributed.config import QueueConfig
from distributed.dead_letters import requeue_dead_letters
from distributed.errors import QueueFull, TenantQueueFull
from distributed.ids import job_id_of
from distributed.jobs import get_job
from distributed.messages import TaskResult
from distributed.queue import Delivery, Queue
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import submit_tasks


def result(worker: str = "w") -> TaskResult:
    return TaskResult(duration_ms=1.0, worker=worker, attempt=1)


@pytest.fixture
def big_queue(redis_client: redis.Redis, queue_config: QueueConfig) -> Queue:
    config = dataclasses.replace(queue_config, max_queued_tasks=100_000,
                                 tenant_max_open_tasks=50_000)
    q = Queue(redis_client, config)
    q.ensure_groups()
    return q


def drain(queue: Queue, *, count: int, until: str, workers: int = 2) -> list[str]:
    """Fetch and complete with ``workers`` consumers taking turns, ``count`` tasks per fetch,
    until job ``until`` is complete; the task ids in completion order."""
    done: list[str] = []
    for turn in range(100_000):
        worker = f"w{turn % workers}"
        batch: list[Delivery] = queue.fetch(consumer=worker, owner=f"{worker}/x", count=count)
        for d in batch:
            assert queue.complete(d, result(worker))
            done.append(d.task_id)
        job = get_job(queue.client, queue.config, until, task_limit=1)
        if job is not None and job["status"] == "completed":
            return done
    pytest.fail("the job never completed")


def test_a_small_job_is_not_stuck_behind_another_tenants_backlog(big_queue, redis_client):
    # Given tenant A with 20,000 queued tasks, one of them already in hand
    a_jobs = [submit_tasks(big_queue, 5000, tenant="a") for _ in range(4)]
    [first] = big_queue.fetch(consumer="w0", owner="w0/x", count=1)
    assert job_id_of(first.task_id) == a_jobs[0]
    # When tenant B submits 10 tasks and two workers take 4 tasks per fetch
    b_job = submit_tasks(big_queue, 10, tenant="b")
    done = drain(big_queue, count=4, until=b_job)
    # Then B's tasks alternate with A's: B waited for about one of A's tasks per B task
    a_done = [t for t in done if job_id_of(t) != b_job]
    b_done = [t for t in done if job_id_of(t) == b_job]
    assert len(b_done) == 10
    assert len(a_done) <= 12, len(a_done)
    assert b_done == [f"{b_job}.{i}" for i in range(10)]  # B's own order is kept
    # And A's backlog is almost all still pending, in its own order
    stats = assert_counts_add_up(redis_client, big_queue.config)
    assert stats["pending:normal"] >= 20_000 - 1 - 12
    assert a_done == [f"{a_jobs[0]}.{i}" for i in range(1, len(a_done) + 1)]


def test_tenants_take_turns_one_task_each(big_queue):
    a = submit_tasks(big_queue, 6, tenant="a")
    b = submit_tasks(big_queue, 3, tenant="b")
    c = submit_tasks(big_queue, 1, tenant="c")
    got = [job_id_of(d.task_id) for d in big_queue.fetch(consumer="w", owner="w/x", count=10)]
    assert got == [a, b, c, a, b, a, b, a, a, a]


def test_priorities_still_order_within_and_across_tenants(big_queue):
    # Given tenant A's low-priority backlog and then its own and B's high-priority jobs
    a_low = submit_tasks(big_queue, 50, tenant="a", priority="low")
    a_high = submit_tasks(big_queue, 2, tenant="a", priority="high")
    b_high = submit_tasks(big_queue, 2, tenant="b", priority="high")
    b_normal = submit_tasks(big_queue, 2, tenant="b", priority="normal")
    # When fetching one at a time (fetches 0..3 try high first)
    order = [job_id_of(big_queue.fetch(consumer="w", owner="w/x", count=1, fetch_no=n)[0].task_id)
             for n in range(4)]
    # Then high priority comes first, round-robin across the two tenants, then normal
    assert order == [a_high, b_high, a_high, b_high]
    [d] = big_queue.fetch(consumer="w", owner="w/x", count=1, fetch_no=5)
    assert job_id_of(d.task_id) == b_normal
    # And the rotation still gives low a turn (fetch 9 tries low first)
    [d] = big_queue.fetch(consumer="w", owner="w/x", count=1, fetch_no=9)
    assert job_id_of(d.task_id) == a_low


def test_tenant_cap_refuses_that_tenant_only(redis_client, queue_config):
    config = dataclasses.replace(queue_config, tenant_max_open_tasks=10)
    queue = Queue(redis_client, config)
    a_job = submit_tasks(queue, 10, tenant="a")
    with pytest.raises(TenantQueueFull) as refused:
        submit_tasks(queue, 1, tenant="a")
    assert refused.value.open_tasks == 10 and refused.value.cap == 10
    assert refused.value.retry_after_s >= 1
    submit_tasks(queue, 10, tenant="b")  # B is not affected
    # A finished task frees a place for A (open = pending + running + delayed)
    [d] = queue.fetch(consumer="w", owner="w/x", count=1)
    assert d.task_id == f"{a_job}.0"
    with pytest.raises(TenantQueueFull):
        submit_tasks(queue, 1, tenant="a")  # running still counts
    assert queue.complete(d, result())
    submit_tasks(queue, 1, tenant="a")
    stats = assert_counts_add_up(redis_client, config)
    assert stats["accepted"] == 21
    opened = {t.decode(): int(v)
              for t, v in redis_client.hgetall(config.keys.tenants_open()).items()}
    assert opened == {"a": 10, "b": 10}


def test_the_global_cap_still_comes_first(redis_client, queue_config):
    config = dataclasses.replace(queue_config, max_queued_tasks=5, tenant_max_open_tasks=100)
    queue = Queue(redis_client, config)
    submit_tasks(queue, 5, tenant="a")
    with pytest.raises(QueueFull) as refused:
        submit_tasks(queue, 1, tenant="b")
    assert not isinstance(refused.value, TenantQueueFull)


def test_counters_add_up_after_a_mixed_run(big_queue, redis_client):
    # Given two tenants' jobs at two priorities
    config = big_queue.config
    a = submit_tasks(big_queue, 6, tenant="a")
    b = submit_tasks(big_queue, 6, tenant="b", priority="high")
    c = submit_tasks(big_queue, 4, tenant="a", priority="low")
    # When tasks complete, retry, die, get released, and a job is cancelled
    got = big_queue.fetch(consumer="w1", owner="w1/x", count=6)
    assert len(got) == 6
    verdicts = [
        big_queue.fail(got[0], kind="OSError", message="x", permanent=False, retry_in_s=0.01),
        big_queue.fail(got[1], kind="bad", message="x", permanent=True, retry_in_s=0),
    ]
    assert verdicts == ["retry", "dead"]
    assert big_queue.release(got[2])
    assert big_queue.complete(got[3], result())
    assert_counts_add_up(redis_client, config)
    assert big_queue.cancel_job(c) == 4
    assert_counts_add_up(redis_client, config)
    time.sleep(0.05)
    assert big_queue.promote_due() == 1
    assert requeue_dead_letters(redis_client, config) == 1
    assert_counts_add_up(redis_client, config)
    # Then everything left runs to completion
    for d in got[4:6]:
        assert big_queue.complete(d, result())
    for _ in range(100):
        batch = big_queue.fetch(consumer="w2", owner="w2/x", count=3)
        if not batch:
            break
        for d in batch:
            assert big_queue.complete(d, result())
    stats = assert_counts_add_up(redis_client, config)
    assert stats["completed"] == 12 and stats["cancelled"] == 4 and stats["accepted"] == 16
    assert redis_client.hgetall(config.keys.tenants_open()) == {}
    assert get_job(redis_client, config, a)["status"] == "completed"
    assert get_job(redis_client, config, b)["status"] == "completed"


def test_released_task_is_next_for_its_tenant(big_queue):
    job = submit_tasks(big_queue, 3, tenant="a")
    [d] = big_queue.fetch(consumer="w", owner="w/x", count=1)
    assert big_queue.release(d)
    [again] = big_queue.fetch(consumer="w", owner="w/x", count=1)
    assert again.task_id == f"{job}.0" and again.attempt == 1


def test_an_idle_worker_blocked_on_the_doorbell_wakes_on_submission(big_queue):
    got: list[Delivery] = []
    waiter = threading.Thread(target=lambda: got.extend(
        big_queue.fetch(consumer="w", owner="w/x", count=1, block_ms=5000)))
    started = time.monotonic()
    waiter.start()
    time.sleep(0.3)
    job = submit_tasks(big_queue, 1, tenant="a")
    waiter.join(10)
    assert [d.task_id for d in got] == [f"{job}.0"]
    assert time.monotonic() - started < 4.0


def test_a_cancelled_backlog_is_dropped_by_fetches_without_reaching_the_stream(
    big_queue, redis_client
):
    # Given A's 3,000 listed tasks, cancelled, then 2 new ones of A
    big_queue.cancel_job(submit_tasks(big_queue, 3000, tenant="a"))
    fresh = submit_tasks(big_queue, 2, tenant="a")
    # When fetching: each call drops at most 1,000 cancelled ids
    got: list[str] = []
    for _ in range(5):
        got += [d.task_id for d in big_queue.fetch(consumer="w", owner="w/x", count=2)]
        if len(got) == 2:
            break
    # Then only the live tasks were delivered, and no cancelled task hash was touched
    assert got == [f"{fresh}.0", f"{fresh}.1"]
    stats = assert_counts_add_up(redis_client, big_queue.config)
    assert stats["cancelled"] == 3000 and stats["running"] == 2
    assert sum(redis_client.xlen(s) for s in big_queue.keys.queues()) == 2
