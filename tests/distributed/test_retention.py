"""Retention in Redis: a finished task keeps only what the job view reads, and a finished job's
keys expire after RETENTION_DAYS (the jobs index then drops its id)."""

from __future__ import annotations

import dataclasses
import time

import redis

from distributed.config import QueueConfig
from distributed.ids import new_job_id
from distributed.jobs import get_job
from distributed.listing import trim_expired
from distributed.messages import TaskMessage, TaskResult
from distributed.queue import Queue
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import submit_tasks


def test_a_completed_task_drops_its_payload_but_the_job_view_keeps_its_image(
    queue, redis_client, queue_config
):
    job_id = new_job_id()
    messages = [TaskMessage(kind="image", job_id=job_id, index=0, image_id="abc123",
                            steps=({"name": "sharpen", "params": {"intensity": 3}},) * 20)]
    queue.submit(job_id=job_id, priority="normal", messages=messages, job_fields={})
    task_key = queue_config.keys.task(f"{job_id}.0")
    payload = redis_client.hget(task_key, "payload")
    assert len(payload) > 1000
    [d] = queue.fetch(consumer="w", owner="w/x", count=1)
    queue.complete(d, TaskResult(duration_ms=1.0, worker="w", attempt=1, output_key="o.png"))
    fields = {k.decode() for k in redis_client.hkeys(task_key)}
    assert "payload" not in fields and "msg_id" not in fields and "owner" not in fields
    # What stays (state, times, result, image id) is smaller than the payload alone was
    stored = sum(len(k) + len(v) for k, v in redis_client.hgetall(task_key).items())
    assert stored < len(payload) / 2, stored
    [task] = get_job(redis_client, queue_config, job_id)["tasks"]
    assert task["image"] == "abc123" and task["state"] == "completed"
    assert task["result"].output_key == "o.png"


def test_a_dead_task_keeps_its_payload_for_a_requeue(queue, redis_client, queue_config):
    job = submit_tasks(queue, 1)
    [d] = queue.fetch(consumer="w", owner="w/x", count=1)
    assert queue.fail(d, kind="bad", message="x", permanent=True, retry_in_s=0) == "dead"
    assert redis_client.hexists(queue_config.keys.task(f"{job}.0"), "payload")


def test_finished_jobs_expire_after_the_retention_and_leave_the_index(
    redis_client: redis.Redis, queue_config: QueueConfig
):
    config = dataclasses.replace(queue_config, retention_days=1.5 / 86400)
    queue = Queue(redis_client, config)
    k = config.keys
    done = submit_tasks(queue, 2)
    cancelled = submit_tasks(queue, 1, priority="low")
    open_job = submit_tasks(queue, 1, priority="high")
    for d in queue.fetch(consumer="w", owner="w/x", count=2, fetch_no=4):  # normal first
        queue.complete(d, TaskResult(duration_ms=1.0, worker="w", attempt=1))
    queue.cancel_job(cancelled)
    for job in (done, cancelled):
        assert 0 < redis_client.ttl(k.job(job)) <= 2
        assert 0 < redis_client.ttl(k.job_tasks(job)) <= 2
        assert 0 < redis_client.ttl(k.task(f"{job}.0")) <= 2
    assert redis_client.ttl(k.job(open_job)) == -1  # unfinished: kept
    time.sleep(2.2)
    assert not redis_client.exists(k.job(done), k.job_tasks(done), k.task(f"{done}.0"),
                                   k.job(cancelled), k.task(f"{cancelled}.0"))
    assert trim_expired(redis_client, config) == 2
    assert [m.decode() for m in redis_client.zrange(k.jobs(), 0, -1)] == [open_job]
    # The cancelled task is still listed for its tenant: the next fetch drops it unharmed
    [d] = queue.fetch(consumer="w", owner="w/x", count=5)
    assert d.task_id == f"{open_job}.0"
    assert queue.fetch(consumer="w", owner="w/x", count=5) == []
    assert not redis_client.exists(k.task(f"{cancelled}.0"))  # not recreated
    assert_counts_add_up(redis_client, config)
