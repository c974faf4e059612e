"""Reading job and task records (the API's view of a distributed job)."""

from __future__ import annotations

import json
from typing import Any

import redis

from distributed.config import QueueConfig
from distributed.errors import translate_redis_errors
from distributed.keys import Keys

TASK_FIELDS = (
    "id", "index", "state", "attempts", "worker", "error", "last_error", "result", "payload",
    "enqueued_at", "started_at", "finished_at", "retry_at", "priority",
)


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _int(value: bytes | None) -> int | None:
    return int(value) if value is not None else None


def job_status(total: int, completed: int, dead: int, cancelled: int, started: bool) -> str:
    """queued / running / completed / completed_with_errors / failed / cancelled."""
    if total and completed + dead + cancelled >= total:
        if completed == total:
            return "completed"
        if completed == 0:
            return "cancelled" if dead == 0 else "failed"
        return "completed_with_errors"
    return "running" if started else "queued"


def task_view(values: list[bytes | None]) -> dict[str, Any]:
    raw = dict(zip(TASK_FIELDS, (_text(v) for v in values), strict=True))
    payload = json.loads(raw["payload"]) if raw["payload"] else {}
    return {
        "id": raw["id"],
        "index": _int(values[1]),
        "image": payload.get("image_id"),
        "state": raw["state"],
        "attempts": _int(values[3]) or 0,
        "worker": raw["worker"],
        "error": json.loads(raw["error"]) if raw["error"] else None,
        "last_error": json.loads(raw["last_error"]) if raw["last_error"] else None,
        "result": json.loads(raw["result"]) if raw["result"] else None,
        "enqueued_at_ms": _int(values[9]),
        "started_at_ms": _int(values[10]),
        "finished_at_ms": _int(values[11]),
        "retry_at_ms": _int(values[12]),
        "priority": raw["priority"],
    }


def get_job(
    client: redis.Redis, config: QueueConfig, job_id: str, *, task_offset: int = 0,
    task_limit: int = 1000,
) -> dict[str, Any] | None:
    """The job record with its tasks (a page of them), or None if unknown or expired."""
    k = Keys(config.prefix)
    with translate_redis_errors():
        raw = client.hgetall(k.job(job_id))
        if not raw:
            return None
        task_ids = client.lrange(k.job_tasks(job_id), task_offset, task_offset + task_limit - 1)
        pipe = client.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hmget(k.task(task_id.decode()), TASK_FIELDS)
        rows = pipe.execute()
    job = {key.decode(): value.decode() for key, value in raw.items()}
    counts = {f: int(job.get(f, 0)) for f in ("total", "completed", "dead", "cancelled")}
    tasks = [task_view(values) for values in rows if values[0] is not None]
    by_state: dict[str, int] = {}
    for task in tasks:
        by_state[task["state"]] = by_state.get(task["state"], 0) + 1
    return {
        "id": job_id,
        "fields": job,
        "status": job_status(**counts, started="started_at" in job),
        "counts": counts,
        "states": by_state,
        "tasks": tasks,
    }


def get_task(client: redis.Redis, config: QueueConfig, task_id: str) -> dict[str, Any] | None:
    with translate_redis_errors():
        values = client.hmget(Keys(config.prefix).task(task_id), TASK_FIELDS)
    return task_view(values) if values[0] is not None else None
