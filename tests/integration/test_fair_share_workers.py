"""Fair share with real worker processes: a tenant's small job is not stuck behind another
tenant's backlog."""

from __future__ import annotations

import dataclasses

import pytest
import redis

from distributed.config import QueueConfig
from distributed.queue import Queue
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import submit_tasks
from tests.support.workers import wait_until


@pytest.fixture
def queue_config(queue_config: QueueConfig) -> QueueConfig:
    return dataclasses.replace(queue_config, max_queued_tasks=100_000,
                               tenant_max_open_tasks=50_000)


def completed(client: redis.Redis, config: QueueConfig, job_ids: list[str]) -> int:
    return sum(int(client.hget(config.keys.job(j), "completed") or 0) for j in job_ids)


def test_b_small_job_completes_while_most_of_a_backlog_waits(
    start_worker, redis_client, queue_config
):
    queue = Queue(redis_client, queue_config)
    queue.ensure_groups()
    workers = [start_worker("w1"), start_worker("w2")]
    # Given tenant A's 20,000 no-op tasks, already being worked on by two workers
    a_jobs = [submit_tasks(queue, 5000, tenant="a") for _ in range(4)]
    wait_until(lambda: completed(redis_client, queue_config, a_jobs) > 0, 60,
               interval_s=0.005, message="A's first completion")
    # When tenant B submits 10 tasks
    a_before = completed(redis_client, queue_config, a_jobs)
    b_job = submit_tasks(queue, 10, tenant="b")
    wait_until(lambda: completed(redis_client, queue_config, [b_job]) == 10, 60,
               interval_s=0.005, message="B's job to complete")
    a_after = completed(redis_client, queue_config, a_jobs)
    # Then B's job went through while most of A's backlog was still waiting: B waited for
    # the tasks the workers held and about one of A's per fetch, not for A's backlog
    assert a_after < 10_000, (a_before, a_after)
    assert a_after - a_before < 1000, (a_before, a_after)
    # And the counters add up (read once the workers stopped: the check is not atomic)
    for worker in workers:
        worker.stop_now()
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["accepted"] == 20_010 and stats["completed"] >= a_after + 10
