"""The index of distributed jobs by submission time (``{p}:jobs``, written by enqueue.lua):
pages by rank, summaries of the jobs of a page, and trimming of ids whose job expired.

Every read costs O(log N + page) on Redis: ranks come from ZREVRANGE, summaries from one
pipelined HMGET per job of the page. Nothing here scans keys or whole tasks lists."""

from __future__ import annotations

from typing import Any

import redis

from distributed.config import QueueConfig
from distributed.errors import translate_redis_errors
from distributed.jobs import job_status

SUMMARY_FIELDS = (
    "id", "total", "completed", "dead", "cancelled", "created_at", "started_at", "finished_at",
    "priority", "tenant",
)
# Ids at the oldest end of the index checked for expiry on each listing (jobs expire
# RETENTION_DAYS after they finish, so the oldest ones go first).
TRIM_OLDEST = 50


def _int(value: bytes | None) -> int | None:
    return int(value) if value is not None and value != b"" else None


def summary_view(job_id: str, values: list[bytes | None]) -> dict[str, Any]:
    """A job's summary from its hash fields (SUMMARY_FIELDS): counts and status, no tasks."""
    total, completed, dead, cancelled = (_int(v) or 0 for v in values[1:5])
    started = values[6] is not None
    return {
        "id": job_id,
        "status": job_status(total, completed, dead, cancelled, started=started),
        "total": total,
        "completed": completed,
        "dead": dead,
        "cancelled": cancelled,
        "created_at_ms": _int(values[5]),
        "started_at_ms": _int(values[6]),
        "finished_at_ms": _int(values[7]),
        "priority": values[8].decode() if values[8] is not None else None,
        "tenant": values[9].decode() if values[9] is not None else None,
    }


def job_count(client: redis.Redis, config: QueueConfig, tenant: str | None = None) -> int:
    """Ids in the index, everyone's or ``tenant``'s (those expired since the last trim
    included)."""
    with translate_redis_errors():
        return int(client.zcard(config.keys.jobs(tenant)))


def job_ranks(
    client: redis.Redis, config: QueueConfig, *, start: int, stop: int,
    tenant: str | None = None,
) -> list[tuple[str, int]]:
    """(job id, submitted ms) at ranks [start, stop) of the index (everyone's or
    ``tenant``'s), newest first."""
    if stop <= start:
        return []
    with translate_redis_errors():
        entries = client.zrevrange(config.keys.jobs(tenant), start, stop - 1, withscores=True)
    return [(member.decode(), int(score)) for member, score in entries]


def job_summaries(
    client: redis.Redis, config: QueueConfig, job_ids: list[str], tenant: str | None = None
) -> dict[str, dict[str, Any] | None]:
    """The summary of each job; None for one whose hash has expired (its id is then removed
    from the index, and from ``tenant``'s)."""
    k = config.keys
    with translate_redis_errors():
        pipe = client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(k.job(job_id), SUMMARY_FIELDS)
        rows = pipe.execute()
        gone = [job_id for job_id, values in zip(job_ids, rows, strict=True)
                if values[0] is None]
        if gone:
            client.zrem(k.jobs(), *gone)
            if tenant is not None:
                client.zrem(k.jobs(tenant), *gone)
    return {job_id: summary_view(job_id, values) if values[0] is not None else None
            for job_id, values in zip(job_ids, rows, strict=True)}


def trim_expired(
    client: redis.Redis, config: QueueConfig, *, oldest: int = TRIM_OLDEST,
    tenant: str | None = None,
) -> int:
    """Remove from the index (everyone's or ``tenant``'s) the ids among its ``oldest``
    entries whose job hash has expired; how many were removed. Bounded: O(oldest) whatever
    the size of the index."""
    k = config.keys
    index = k.jobs(tenant)
    with translate_redis_errors():
        ids = [member.decode() for member in client.zrange(index, 0, oldest - 1)]
        if not ids:
            return 0
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.exists(k.job(job_id))
        gone = [job_id for job_id, found in zip(ids, pipe.execute(), strict=True) if not found]
        if gone:
            client.zrem(index, *gone)
    return len(gone)
