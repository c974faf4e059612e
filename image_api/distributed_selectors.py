"""Reads of the distributed mode: job records, cluster status, dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from distributed.jobs import result_entry
from image_api.broker import broker

RESULT_STATUS = {"completed": "completed", "dead": "failed", "cancelled": "cancelled"}


def _when(ms: int | str | None) -> datetime | None:
    if ms in (None, ""):
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def _result(task: dict[str, Any]) -> dict[str, Any]:
    result = task["result"]  # a TaskResult once completed
    error = task["error"]
    queued_ms = started_ms = None
    if task["started_at_ms"] and task["enqueued_at_ms"]:
        queued_ms = task["started_at_ms"] - task["enqueued_at_ms"]
    if task["finished_at_ms"] and task["started_at_ms"]:
        started_ms = task["finished_at_ms"] - task["started_at_ms"]
    entry = result_entry(
        index=task["index"], image=task["image"],
        status=RESULT_STATUS.get(task["state"], task["state"]),
        output=result.to_dict() if result is not None else None,
        error={"code": error.get("kind"), "message": error.get("message")} if error else None,
    )
    entry.update({
        "task_id": task["id"],
        "state": task["state"],
        "attempts": task["attempts"],
        "worker": task["worker"],
        "queued_ms": queued_ms,
        "run_ms": started_ms,
        "retry_at": _when(task["retry_at_ms"]),
    })
    return entry


def distributed_job_get(job_id: str) -> dict[str, Any] | None:
    """A distributed job in the same shape as a local one, plus progress and per-task state."""
    job = broker().job(job_id)
    if job is None:
        return None
    fields, counts = job["fields"], job["counts"]
    results = [_result(task) for task in job["tasks"]]
    created, finished = _when(fields.get("created_at")), _when(fields.get("finished_at"))
    wall = (finished - created).total_seconds() if created and finished else None
    states = job["states"]
    return {
        "id": job_id,
        "mode": "distributed",
        "status": job["status"],
        "priority": fields.get("priority"),
        "created_at": created,
        "started_at": _when(fields.get("started_at")),
        "finished_at": finished,
        "total": counts["total"],
        "progress": {
            "completed": counts["completed"],
            "failed": counts["dead"],
            "cancelled": counts["cancelled"],
            "pending": states.get("pending", 0),
            "running": states.get("running", 0),
            "delayed": states.get("delayed", 0),
        },
        "output_format": fields.get("output_format") or None,
        "quality": int(fields.get("quality", 90)),
        "pipeline": json.loads(fields.get("pipeline", "[]")),
        "results": results,
        "stats": {
            "wall_seconds": round(wall, 4) if wall is not None else None,
            "images_per_second": round(counts["completed"] / wall, 3) if wall else None,
        },
    }


def workers_status() -> dict[str, Any]:
    return broker().cluster_status()


def dead_letters_list(*, offset: int, limit: int) -> dict[str, Any]:
    total, items = broker().dead_letters(offset=offset, limit=limit)
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "items": [
            {
                "task_id": item["id"],
                "job_id": item["job_id"],
                "index": item.get("index"),
                "image": item.get("image"),
                "attempts": item.get("attempts"),
                "error": item.get("error"),
                "worker": item.get("worker"),
                "dead_at": _when(item["dead_at_ms"]),
            }
            for item in items
        ],
    }
