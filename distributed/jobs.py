"""Jobs as the API shows them, in every mode: the status rule, the shape of one result entry,
and reading a distributed job's records from Redis."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import redis

from distributed.config import QueueConfig
from distributed.errors import InvalidMessage, translate_redis_errors
from distributed.ids import is_job_id, is_task_id
from distributed.messages import TaskMessage, TaskResult

logger = logging.getLogger(__name__)

TASK_FIELDS = (
    "id", "index", "state", "attempts", "worker", "error", "last_error", "result", "payload",
    "enqueued_at", "started_at", "finished_at", "retry_at", "priority", "image", "tenant",
)
RESULT_FIELDS = ("output_key", "format", "width", "height", "bytes", "timings", "total_ms")


def job_status(total: int, completed: int, failed: int, cancelled: int, started: bool) -> str:
    """The status of a job from its task counts; every mode uses this one rule.

    A task ends in exactly one of completed, failed (dead-lettered, or an error in a local
    mode) and cancelled; ``started`` is whether any task of the job has started.

    - ``queued``: not every task has ended and none has started yet.
    - ``running``: not every task has ended and at least one has started.
    - ``completed``: every task completed.
    - ``cancelled``: every task has ended and at least one was cancelled (the job was
      cancelled, or a dead letter of it was discarded); ``progress`` tells how many
      completed, failed and were cancelled.
    - ``failed``: every task has ended, none completed and none was cancelled.
    - ``completed_with_errors``: every task has ended, some completed, some failed and none
      was cancelled.

    A dead letter re-queued later makes its job ``running`` again until that task ends.
    """
    if completed + failed + cancelled < total:
        return "running" if started else "queued"
    if completed == total:
        return "completed"
    if cancelled:
        return "cancelled"
    if completed == 0:
        return "failed"
    return "completed_with_errors"


def result_entry(
    *,
    index: int,
    image: str | None,
    status: str,
    output: Mapping[str, Any] | None = None,
    error: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One entry of a job's ``results`` (every mode): where the output went and what it cost
    (``output``: a ``TaskResult.to_dict()`` or a local outcome), or why there is none
    (``error``: ``{"code", "message"}``). The image fields are None without an output."""
    out = output or {}
    entry: dict[str, Any] = {"index": index, "image": image, "status": status}
    entry.update({field: out.get(field) for field in RESULT_FIELDS})
    entry["timings"] = list(out.get("timings") or [])
    entry["error"] = {"code": error.get("code"), "message": error.get("message")} if error \
        else None
    return entry


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _int(value: bytes | None) -> int | None:
    return int(value) if value is not None else None


def _json(value: str | None) -> Any:
    return json.loads(value) if value else None


def _result(task_id: str | None, raw: str | None) -> TaskResult | None:
    if not raw:
        return None
    try:
        return TaskResult.from_json(raw)
    except InvalidMessage as exc:
        logger.warning("task.result_unreadable", extra={"task": task_id, "error": str(exc)})
        return None


def _image(raw: str | None) -> str | None:
    if not raw:
        return None
    try:
        return TaskMessage.from_json(raw).image_id
    except InvalidMessage:
        return None  # shown as dead-lettered with kind invalid_payload


def task_view(values: list[bytes | None]) -> dict[str, Any]:
    """A task record; ``result`` is a :class:`TaskResult` (None until completed)."""
    raw = dict(zip(TASK_FIELDS, (_text(v) for v in values), strict=True))
    return {
        "id": raw["id"],
        "index": _int(values[1]),
        # A completed task keeps its image id alone (complete.lua drops the payload).
        "image": raw["image"] or _image(raw["payload"]),
        "state": raw["state"],
        "attempts": _int(values[3]) or 0,
        "worker": raw["worker"],
        "error": _json(raw["error"]),
        "last_error": _json(raw["last_error"]),
        "result": _result(raw["id"], raw["result"]),
        "enqueued_at_ms": _int(values[9]),
        "started_at_ms": _int(values[10]),
        "finished_at_ms": _int(values[11]),
        "retry_at_ms": _int(values[12]),
        "priority": raw["priority"],
        "tenant": raw["tenant"] or "anonymous",
    }


def get_job(
    client: redis.Redis, config: QueueConfig, job_id: str, *, task_offset: int = 0,
    task_limit: int = 1000,
) -> dict[str, Any] | None:
    """The job record with its tasks (a page of them), or None if unknown, expired or not a
    job id at all."""
    if not is_job_id(job_id):
        return None
    k = config.keys
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
    status = job_status(counts["total"], counts["completed"], counts["dead"],
                        counts["cancelled"], started="started_at" in job)
    return {
        "id": job_id,
        "fields": job,
        "status": status,
        "counts": counts,
        "states": by_state,
        "tasks": tasks,
    }


def get_task(client: redis.Redis, config: QueueConfig, task_id: str) -> dict[str, Any] | None:
    """One task record, or None if unknown, expired or not a task id."""
    if not is_task_id(task_id):
        return None
    with translate_redis_errors():
        values = client.hmget(config.keys.task(task_id), TASK_FIELDS)
    return task_view(values) if values[0] is not None else None
