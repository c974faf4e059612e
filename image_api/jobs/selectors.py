"""Reads: a job of any mode (local ones in the database, distributed ones in Redis), its
outputs under the user's file names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distributed.jobs import result_entry
from image_api.broker import broker, queue_config
from image_api.errors import ApplicationError
from image_api.images.selectors import get_storage
from image_api.models import Job
from imaging.names import download_name, unique_names
from imaging.storage import Storage


def job_to_dict(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "mode": job.mode,
        "status": job.status,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "total": job.total,
        "output_format": job.output_format,
        "quality": job.quality,
        "pipeline": job.pipeline,
        "results": job.results,
        "stats": job.stats,
    }


def job_get(job_id: str) -> dict[str, Any] | None:
    """The job as a plain dict (results carry their storage `output_key`), or None.

    Local jobs live in the database; distributed ones in Redis (looked up only when the id is
    not a local job, so the local modes keep working while Redis is down)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        return job_to_dict(job)
    if not queue_config().redis_url:
        return None
    return distributed_job_get(job_id)


def _job_or_404(job_id: str) -> dict[str, Any]:
    job = job_get(job_id)
    if job is None:
        raise ApplicationError(
            f"Unknown job id {job_id!r}.", status=404, code="job_not_found", extra={"job": job_id}
        )
    return job


def job_output(job_id: str, index: int) -> tuple[Path, str, str]:
    """(path, format, download name) of output `index` of a job; 404 ApplicationError if there
    is none."""
    job = _job_or_404(job_id)
    results = job["results"]
    if not 0 <= index < len(results):
        raise ApplicationError(
            f"Job {job_id} has no result {index} (it has {len(results)}).",
            status=404, code="output_not_found", extra={"job": job_id, "index": index},
        )
    result = results[index]
    if result.get("status") != "completed" or not result.get("output_key"):
        raise ApplicationError(
            f"Result {index} of job {job_id} has no output (status {result.get('status')}).",
            status=404, code="output_not_found", extra={"job": job_id, "index": index},
        )
    path = get_storage().path_for_key(result["output_key"])
    if not path.is_file():
        raise ApplicationError(
            f"The output of result {index} of job {job_id} is no longer stored.",
            status=404, code="output_not_found", extra={"job": job_id, "index": index},
        )
    return path, result["format"], output_download_name(get_storage(), result["image"], path)


def output_download_name(storage: Storage, image_id: str, path: Path) -> str:
    """The user's file name of the input, with the output's extension (made safe)."""
    meta = storage.image_meta(image_id) or {}
    return download_name(meta.get("original_name"), image_id, path.suffix)


def job_output_files(job_id: str) -> list[tuple[str, Path]]:
    """(archive name, path) of every completed output still stored, in image order. Entries
    are named after the original files ("holiday.png"; a repeat becomes "holiday (2).png")."""
    job = _job_or_404(job_id)
    storage = get_storage()
    paths, names = [], []
    for result in job["results"]:
        if result.get("status") != "completed" or not result.get("output_key"):
            continue
        path = storage.path_for_key(result["output_key"])
        if path.is_file():
            paths.append(path)
            names.append(output_download_name(storage, result["image"], path))
    return list(zip(unique_names(names), paths, strict=True))


RESULT_STATUS = {"completed": "completed", "dead": "failed", "cancelled": "cancelled"}


def when_from_ms(ms: int | str | None) -> datetime | None:
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
        "retry_at": when_from_ms(task["retry_at_ms"]),
    })
    return entry


def distributed_job_get(job_id: str) -> dict[str, Any] | None:
    """A distributed job in the same shape as a local one, plus progress and per-task state."""
    job = broker().job(job_id)
    if job is None:
        return None
    fields, counts = job["fields"], job["counts"]
    results = [_result(task) for task in job["tasks"]]
    created = when_from_ms(fields.get("created_at"))
    finished = when_from_ms(fields.get("finished_at"))
    wall = (finished - created).total_seconds() if created and finished else None
    states = job["states"]
    return {
        "id": job_id,
        "mode": "distributed",
        "status": job["status"],
        "priority": fields.get("priority"),
        "created_at": created,
        "started_at": when_from_ms(fields.get("started_at")),
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
