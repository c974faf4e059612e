"""Reads: a job of any mode (local ones in the database, distributed ones in Redis), its
outputs under the user's file names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db.models import QuerySet

from distributed.broker import Broker
from distributed.callbacks import callback_view
from distributed.errors import RedisUnavailable
from distributed.jobs import result_entry
from image_api.broker import broker, queue_config
from image_api.callbacks.outbox import callback_block, local_callback_block
from image_api.errors import ApplicationError
from image_api.images.selectors import get_storage
from image_api.models import Job
from image_api.pagination import Key, ListSource, Source, merged_page
from image_api.tenancy import Caller
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
        "owner": job.owner,
        "callback": local_callback_block(job),
    }


def job_get(job_id: str, viewer: Caller) -> dict[str, Any] | None:
    """The job as a plain dict (results carry their storage `output_key`), or None when it
    does not exist for ``viewer`` (unknown, or another tenant's).

    Local jobs live in the database; distributed ones in Redis (looked up only when the id is
    not a local job, so the local modes keep working while Redis is down)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        found: dict[str, Any] | None = job_to_dict(job)
    elif not queue_config().redis_url:
        return None
    else:
        found = distributed_job_get(job_id)
    if found is None or not viewer.may_see(found["owner"]):
        return None
    return found


def job_or_404(job_id: str, viewer: Caller) -> dict[str, Any]:
    job = job_get(job_id, viewer)
    if job is None:
        raise ApplicationError(
            f"Unknown job id {job_id!r}.", status=404, code="job_not_found", extra={"job": job_id}
        )
    return job


def job_output(job_id: str, index: int, viewer: Caller) -> tuple[Path, str, str]:
    """(path, format, download name) of output `index` of a job; 404 ApplicationError if there
    is none."""
    job = job_or_404(job_id, viewer)
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


def job_output_files(job_id: str, viewer: Caller) -> list[tuple[str, Path]]:
    """(archive name, path) of every completed output still stored, in image order. Entries
    are named after the original files ("holiday.png"; a repeat becomes "holiday (2).png")."""
    job = job_or_404(job_id, viewer)
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
        "owner": fields.get("tenant"),
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
        "callback": _callback(fields),
    }


def _callback(fields: dict[str, str]) -> dict[str, Any] | None:
    view = callback_view(fields)
    if view is None:
        return None
    return callback_block(view["url"], view["state"], view["attempts"],
                          view["next_attempt_at_ms"])


# --- the job list (GET /api/jobs/) ------------------------------------------------------------

LOCAL_MODES = ("threading", "multiprocessing")
# With a status filter, the distributed jobs are the matches among the newest this many of the
# index (a job's status lives in its hash, not in the index): a bounded read, said in the answer.
STATUS_SCAN_LIMIT = 1000
SCAN_BATCH = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _us(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


class LocalJobs:
    """The jobs of the local modes in the database, newest first."""

    def __init__(self, queryset: QuerySet[Job]) -> None:
        self.queryset = queryset.order_by("-created_at", "-id")

    def count(self) -> int:
        return self.queryset.count()

    def keys(self, start: int, stop: int) -> list[Key]:
        rows = self.queryset.values_list("created_at", "id")[start:stop]
        return [(_us(created), job_id) for created, job_id in rows]


class DistributedJobs:
    """The distributed jobs of the Redis index (everyone's, or one tenant's), newest first,
    read by rank."""

    def __init__(self, broker_: Broker, tenant: str | None = None) -> None:
        self.broker = broker_
        self.tenant = tenant

    def count(self) -> int:
        return self.broker.job_count(self.tenant)

    def keys(self, start: int, stop: int) -> list[Key]:
        return [(ms * 1000, job_id)
                for job_id, ms in self.broker.job_ranks(start, stop, self.tenant)]


def _distributed_with_status(
    broker_: Broker, status: str, tenant: str | None
) -> tuple[ListSource, dict[str, dict[str, Any] | None], bool]:
    """(the matches among the newest STATUS_SCAN_LIMIT jobs, their summaries, whether the
    index holds more than were read)."""
    keys: list[Key] = []
    summaries: dict[str, dict[str, Any] | None] = {}
    for start in range(0, STATUS_SCAN_LIMIT, SCAN_BATCH):
        ranks = broker_.job_ranks(start, start + SCAN_BATCH, tenant)
        found = broker_.job_summaries([job_id for job_id, _ in ranks], tenant)
        for job_id, ms in ranks:
            summary = found[job_id]
            if summary is not None and summary["status"] == status:
                keys.append((ms * 1000, job_id))
                summaries[job_id] = summary
        if len(ranks) < SCAN_BATCH:
            return ListSource(keys), summaries, False
    return ListSource(keys), summaries, broker_.job_count(tenant) > STATUS_SCAN_LIMIT


def _local_item(job: Job) -> dict[str, Any]:
    completed = sum(result.get("status") == "completed" for result in job.results)
    return {
        "id": job.id, "mode": job.mode, "status": job.status, "priority": None,
        "created_at": job.created_at, "started_at": job.created_at,
        "finished_at": job.finished_at, "total": job.total,
        # Local jobs are recorded once every image has ended.
        "progress": {"completed": completed, "failed": len(job.results) - completed,
                     "cancelled": 0, "open": 0, "pending": 0, "running": 0},
    }


def _distributed_item(summary: dict[str, Any]) -> dict[str, Any]:
    ended = summary["completed"] + summary["dead"] + summary["cancelled"]
    open_ = max(0, summary["total"] - ended)
    queued = summary["started_at_ms"] is None
    return {
        "id": summary["id"], "mode": "distributed", "status": summary["status"],
        "priority": summary["priority"], "created_at": when_from_ms(summary["created_at_ms"]),
        "started_at": when_from_ms(summary["started_at_ms"]),
        "finished_at": when_from_ms(summary["finished_at_ms"]), "total": summary["total"],
        # Which open tasks run is in the task hashes: known only before any has started.
        "progress": {"completed": summary["completed"], "failed": summary["dead"],
                     "cancelled": summary["cancelled"], "open": open_,
                     "pending": open_ if queued else None, "running": 0 if queued else None},
    }


def _page(
    local: LocalJobs, distributed: Source, offset: int, limit: int,
    summaries: dict[str, dict[str, Any] | None], broker_: Broker | None, *, strict: bool = True,
    tenant: str | None = None,
) -> tuple[int, list[dict[str, Any]]] | None:
    """(total, items), or None when a job of the page expired meanwhile (read it again),
    unless not ``strict``: the page then goes without it."""
    total, page = merged_page(local, distributed, offset=offset, limit=limit)
    local_ids = [key[1] for source, key in page if source == 0]
    remote_ids = [key[1] for source, key in page if source == 1 and key[1] not in summaries]
    jobs = {job.id: job for job in Job.objects.filter(pk__in=local_ids).defer("pipeline")}
    found = {**summaries, **(broker_.job_summaries(remote_ids, tenant) if broker_ and remote_ids
                             else {})}
    items = []
    for source, (_, job_id) in page:
        if source == 0 and job_id in jobs:
            items.append(_local_item(jobs[job_id]))
        elif source == 1 and found.get(job_id) is not None:
            items.append(_distributed_item(found[job_id]))  # type: ignore[arg-type]
        elif strict:
            return None
    return total, items


def job_summary(job_id: str, viewer: Caller) -> dict[str, Any] | None:
    """One job as an item of the job list (counts, no per-image results), or None when it
    does not exist for ``viewer``."""
    job = Job.objects.filter(pk=job_id).defer("pipeline").first()
    if job is not None:
        return _local_item(job) if viewer.may_see(job.owner) else None
    if not queue_config().redis_url:
        return None
    summary = broker().job_summaries([job_id]).get(job_id)
    if summary is None or not viewer.may_see(summary.get("tenant")):
        return None
    return _distributed_item(summary)


def job_list(
    *, viewer: Caller, offset: int, limit: int, status: str | None = None,
    mode: str | None = None,
) -> dict[str, Any]:
    """A page of the jobs ``viewer`` may see, of every mode, newest first, with progress
    counts (no per-task results). While Redis is down, the local jobs alone and
    ``distributed_unavailable``."""
    queryset = Job.objects.all()
    if viewer.scope is not None:
        queryset = queryset.filter(owner=viewer.scope)
    if status:
        queryset = queryset.filter(status=status)
    if mode:
        queryset = queryset.filter(mode=mode) if mode in LOCAL_MODES else queryset.none()
    local = LocalJobs(queryset)
    answer: dict[str, Any] = {"offset": offset, "limit": limit, "distributed_unavailable": False,
                              "distributed_truncated": False}
    page = None
    if mode in (None, "distributed"):
        try:
            page = _distributed_page(local, offset, limit, status, answer, viewer.scope)
        except RedisUnavailable:
            answer["distributed_unavailable"] = True
    if page is None:
        page = _page(local, ListSource([]), offset, limit, {}, None, strict=False)
    answer["total"], answer["items"] = page or (0, [])
    return answer


def _distributed_page(
    local: LocalJobs, offset: int, limit: int, status: str | None, answer: dict[str, Any],
    tenant: str | None,
) -> tuple[int, list[dict[str, Any]]]:
    broker_ = broker()
    broker_.trim_expired_jobs()
    if tenant is not None:
        broker_.trim_expired_jobs(tenant)
    page = None
    for attempt in range(3):  # a job of the page may expire while it is read
        distributed: Source
        summaries: dict[str, dict[str, Any] | None] = {}
        if status:
            distributed, summaries, answer["distributed_truncated"] = \
                _distributed_with_status(broker_, status, tenant)
        else:
            distributed = DistributedJobs(broker_, tenant)
        try:
            page = _page(local, distributed, offset, limit, summaries, broker_,
                         strict=attempt < 2, tenant=tenant)
        except IndexError:  # the index shrank between two reads
            page = None
        if page is not None:
            return page
    return _page(local, ListSource([]), offset, limit, {}, None, strict=False) or (0, [])
