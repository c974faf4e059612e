"""The dead-letter queue: list, re-queue, discard."""

from __future__ import annotations

from typing import Any

import redis

from distributed.clock import now_ms
from distributed.config import QueueConfig
from distributed.errors import translate_redis_errors
from distributed.ids import is_task_id, job_id_of
from distributed.jobs import TASK_FIELDS, task_view
from distributed.keys import Keys
from distributed.scripts import Scripts

BATCH = 200
# A tenant's dead letters are the matches among the newest this many (the set is shared by
# every tenant; its members carry no owner): a bounded read, said in the answer.
TENANT_SCAN_LIMIT = 2000


def list_dead_letters(
    client: redis.Redis, config: QueueConfig, *, offset: int = 0, limit: int = 50
) -> tuple[int, list[dict[str, Any]]]:
    """(total, newest-first page of dead-lettered tasks)."""
    k = config.keys
    with translate_redis_errors():
        total = client.zcard(k.dead())
        entries = client.zrevrange(k.dead(), offset, offset + limit - 1, withscores=True)
        pipe = client.pipeline(transaction=False)
        for task_id, _ in entries:
            pipe.hmget(k.task(task_id.decode()), TASK_FIELDS)
        rows = pipe.execute()
    items = []
    for (task_id, score), values in zip(entries, rows, strict=True):
        view = task_view(values) if values[0] is not None else {"id": task_id.decode()}
        view["dead_at_ms"] = int(score)
        view["job_id"] = job_id_of(task_id.decode())
        items.append(view)
    return total, items


def list_tenant_dead_letters(
    client: redis.Redis, config: QueueConfig, tenant: str, *, offset: int = 0, limit: int = 50
) -> tuple[int, list[dict[str, Any]], bool]:
    """(total, newest-first page, truncated) of the dead letters of ``tenant``'s jobs among
    the newest TENANT_SCAN_LIMIT of the set; ``truncated`` when the set holds more."""
    k = config.keys
    with translate_redis_errors():
        entries = client.zrevrange(k.dead(), 0, TENANT_SCAN_LIMIT - 1, withscores=True)
        jobs = sorted({job_id_of(task_id.decode()) for task_id, _ in entries})
        pipe = client.pipeline(transaction=False)
        for job_id in jobs:
            pipe.hget(k.job(job_id), "tenant")
        owners = dict(zip(jobs, pipe.execute(), strict=True))
        mine = [(task_id, score) for task_id, score in entries
                if owners.get(job_id_of(task_id.decode())) == tenant.encode()]
        page = mine[offset:offset + limit]
        pipe = client.pipeline(transaction=False)
        for task_id, _ in page:
            pipe.hmget(k.task(task_id.decode()), TASK_FIELDS)
        rows = pipe.execute()
        truncated = len(entries) == TENANT_SCAN_LIMIT and client.zcard(k.dead()) > len(entries)
    items = []
    for (task_id, score), values in zip(page, rows, strict=True):
        view = task_view(values) if values[0] is not None else {"id": task_id.decode()}
        view["dead_at_ms"] = int(score)
        view["job_id"] = job_id_of(task_id.decode())
        items.append(view)
    return len(mine), items, truncated


def _apply(
    client: redis.Redis, config: QueueConfig, action: str, task_ids: list[str] | None
) -> int:
    k = config.keys
    scripts = Scripts(client)
    changed = 0
    with translate_redis_errors():
        if task_ids is None:
            # "All": walk the set in batches; each batch is one atomic script call.
            while True:
                batch = [t.decode() for t in client.zrange(k.dead(), 0, BATCH - 1)]
                if not batch:
                    return changed
                done = _run(scripts, k, config, action, batch)
                changed += done
                if done == 0:
                    return changed
        # An id of another shape is no dead letter (and must not reach a key).
        ids = [t for t in task_ids if is_task_id(t)]
        return _run(scripts, k, config, action, ids) if ids else 0


def _run(scripts: Scripts, k: Keys, config: QueueConfig, action: str, ids: list[str]) -> int:
    keys = [k.dead(), k.stats(), k.doorbell(), k.tenants_open(), k.callbacks()]
    for task_id in ids:
        job_id = job_id_of(task_id)
        keys += [k.task(task_id), k.job(job_id), k.job_tasks(job_id)]
    return int(scripts["dead_letters"](
        keys=keys, args=[action, now_ms(), k.tenant_base(), config.job_ttl_s, *ids]
    ))


def requeue_dead_letters(
    client: redis.Redis, config: QueueConfig, task_ids: list[str] | None = None
) -> int:
    """Put dead-lettered tasks back in their queues with a fresh attempt count; None = all."""
    return _apply(client, config, "requeue", task_ids)


def discard_dead_letters(
    client: redis.Redis, config: QueueConfig, task_ids: list[str] | None = None
) -> int:
    """Drop dead-lettered tasks (they end as cancelled); None = all."""
    return _apply(client, config, "discard", task_ids)
