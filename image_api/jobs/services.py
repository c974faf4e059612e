"""Writes: validating a batch (before anything is stored), running it in a local pool or
queueing it for the workers, cancelling.

Every check runs before anything is stored or enqueued: a request that fails validation
leaves no upload, no output, no job and no task behind."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from distributed.errors import NotFound, QueueFull, TenantQueueFull
from distributed.ids import new_job_id
from distributed.jobs import job_status, result_entry
from distributed.keys import PRIORITIES
from distributed.messages import TaskMessage, fingerprint, is_request_id
from image_api.broker import broker, queue_config
from image_api.callbacks.outbox import local_callback_fields
from image_api.callbacks.sender import wake as wake_sender
from image_api.callbacks.signing import checked_callback_url
from image_api.errors import ApplicationError
from image_api.images.selectors import get_storage, visible_meta
from image_api.images.services import ValidatedUpload, uploads_store, uploads_validate
from image_api.jobs import pools
from image_api.jobs.budgets import check_budgets, check_local_batch_fits, image_limits
from image_api.jobs.runner import failure, run_one
from image_api.jobs.selectors import job_get
from image_api.models import Job
from image_api.tenancy import Caller
from image_api.usage.services import min_free_bytes, usage_charge, usage_check_not_full
from imaging.pipeline import Step, parse_pipeline, steps_to_json

logger = logging.getLogger(__name__)


DEFAULT_QUALITY = 90


@dataclass(frozen=True)
class BatchSpec:
    """A validated batch: run `image_ids` then the (not yet stored) `uploads` through `steps`."""

    steps: list[Step]
    image_ids: list[str]
    uploads: list[ValidatedUpload]
    output_format: str | None
    quality: int
    effort: str = "balanced"
    keep_metadata: bool = False
    # Who submits it: the tenant owns the job and its uploads.
    caller: Caller = field(default_factory=Caller)
    # The cost model's CPU estimate for the whole batch (imaging.costs), in ms.
    estimated_ms: float = 0.0
    # POSTed the job when it finishes ('' for none); base_url: where it was submitted (the
    # job's URLs in the callback's body start there).
    callback_url: str = ""
    base_url: str = ""

    @property
    def total(self) -> int:
        return len(self.image_ids) + len(self.uploads)


def _known_images(
    image_ids: Sequence[str], viewer: Caller
) -> list[tuple[str, dict[str, Any]]]:
    """(id, metadata) of each stored image; 400 unknown_image for the first id unknown to
    ``viewer`` (another tenant's upload is unknown)."""
    known = []
    for index, image_id in enumerate(image_ids):
        meta = visible_meta(image_id, viewer)
        if meta is None:
            raise ApplicationError(
                f"images[{index}]: unknown image id {image_id!r}.",
                status=400, code="unknown_image", extra={"image": image_id, "index": index},
            )
        known.append((image_id, meta))
    return known


def batch_prepare(
    *,
    caller: Caller,
    pipeline_data: Mapping[str, Any],
    image_ids: Sequence[str] | None,
    files: Sequence[UploadedFile],
    output_format: str | None,
    quality: int | None,
    effort: str = "balanced",
    keep_metadata: bool = False,
    callback_url: str = "",
    base_url: str = "",
) -> BatchSpec:
    """Validate everything about a batch request without storing or running anything: the
    pipeline, the images, every image's budget (pixels, cost) and the callback URL.

    No image ids and no files means the server's sample set.
    """
    steps = parse_pipeline(pipeline_data)
    callback_url = checked_callback_url(callback_url)
    image_ids = list(image_ids or [])
    limit = int(settings.MAX_BATCH_IMAGES)
    if len(image_ids) + len(files) > limit:
        raise ApplicationError(
            f"The batch has {len(image_ids) + len(files)} images; the limit is {limit}.",
            status=400, code="too_many_images", extra={"limit": limit},
        )
    images = _known_images(image_ids, caller)
    uploads = uploads_validate(files=files)
    if not image_ids and not uploads:
        image_ids = get_storage().sample_ids()[:limit]
        images = _known_images(image_ids, caller)
    estimated_ms = check_budgets(steps, images, uploads, output_format)
    return BatchSpec(
        steps=steps,
        image_ids=image_ids,
        uploads=uploads,
        output_format=output_format,
        quality=DEFAULT_QUALITY if quality is None else quality,
        effort=effort,
        keep_metadata=keep_metadata,
        caller=caller,
        estimated_ms=estimated_ms,
        callback_url=callback_url,
        base_url=base_url,
    )


def _submit_all(executor: Executor, tasks: list[dict[str, Any]]) -> list[Future]:
    return [executor.submit(run_one, task) for task in tasks]


def _run_tasks(mode: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run `run_one` over `tasks` in the mode's shared pool; one outcome dict per task."""
    executor = pools.executor_for(mode)
    try:
        futures = _submit_all(executor, tasks)
    except BrokenExecutor:
        # A child died during an earlier batch: start a fresh pool once.
        pools.discard_pool(executor)
        executor = pools.executor_for(mode)
        futures = _submit_all(executor, tasks)
    outcomes = []
    broken = False
    for future in futures:
        try:
            outcomes.append(future.result())
        except BrokenExecutor:
            broken = True
            outcomes.append(failure("worker_crashed", "The pool worker died on this image."))
    if broken:
        pools.discard_pool(executor)
    return outcomes


def _result_entry(index: int, image_id: str, outcome: dict[str, Any]) -> dict[str, Any]:
    if outcome.get("status") == "completed":
        return result_entry(index=index, image=image_id, status="completed", output=outcome)
    return result_entry(index=index, image=image_id, status="failed", error=outcome.get("error"))


def job_run_local(*, mode: str, batch: BatchSpec) -> str:
    """Store the batch's uploads, run every image in the mode's pool, record the job; its id.
    The outputs are counted in the tenant's usage. Refused while the tenant is at or over
    its quota (StorageQuotaExceeded), or the storage below its free-space floor
    (InsufficientStorage: this process would write the outputs now)."""
    if mode not in pools.MODES:
        raise ValueError(f"unknown local mode {mode!r}")
    check_local_batch_fits(mode, batch)
    usage_check_not_full(tenant=batch.caller.tenant)
    get_storage().check_free(0)
    created_at = timezone.now()
    stored = uploads_store(uploads=batch.uploads, owner=batch.caller.tenant)
    image_ids = [*batch.image_ids, *(meta["id"] for meta in stored)]
    job_id = new_job_id()
    steps_json = steps_to_json(batch.steps)
    common = {
        "media_root": str(settings.MEDIA_ROOT),
        "steps_json": steps_json,
        "job_id": job_id,
        "output_format": batch.output_format,
        "quality": batch.quality,
        "limits": image_limits(),
        "effort": batch.effort,
        "keep_metadata": batch.keep_metadata,
        "colour_profile": settings.COLOUR_PROFILE,
        "tenant": batch.caller.tenant,
        "min_free_bytes": min_free_bytes(),
    }
    tasks = [{**common, "image_id": image_id, "index": i} for i, image_id in enumerate(image_ids)]
    started = time.perf_counter()
    outcomes = _run_tasks(mode, tasks)
    wall_seconds = time.perf_counter() - started
    usage_charge(tenant=batch.caller.tenant,
                 nbytes=sum(int(outcome.get("stored_bytes") or 0) for outcome in outcomes))
    results = [
        _result_entry(index, image_id, outcome)
        for index, (image_id, outcome) in enumerate(zip(image_ids, outcomes, strict=True))
    ]
    finished_at = timezone.now()
    job = Job.objects.create(
        id=job_id,
        mode=mode,
        status=job_status(
            total=len(results), completed=sum(r["status"] == "completed" for r in results),
            failed=sum(r["status"] != "completed" for r in results), cancelled=0, started=True,
        ),
        created_at=created_at,
        finished_at=finished_at,
        total=len(results),
        output_format=batch.output_format,
        quality=batch.quality,
        pipeline=steps_json,
        results=results,
        stats={
            "wall_seconds": round(wall_seconds, 4),
            "images_per_second": round(len(results) / wall_seconds, 3) if wall_seconds else None,
        },
        owner=batch.caller.tenant,
        **local_callback_fields(batch.callback_url, batch.base_url, finished_at),
    )
    if batch.callback_url:
        wake_sender()
    logger.info(
        "job finished id=%s mode=%s status=%s total=%d wall_s=%.3f",
        job.id, mode, job.status, job.total, wall_seconds,
    )
    return job_id


def batch_fingerprint(batch: BatchSpec, priority: str) -> str:
    """What makes two submissions "the same request" for an Idempotency-Key: the pipeline,
    the named images, the output options, the priority, the callback URL and the bytes of
    every upload."""
    request: dict[str, Any] = {
        "steps": steps_to_json(batch.steps),
        "images": list(batch.image_ids),
        "uploads": [hashlib.sha256(upload.read()).hexdigest() for upload in batch.uploads],
        "output_format": batch.output_format,
        "quality": batch.quality,
        "effort": batch.effort,
        "keep_metadata": batch.keep_metadata,
        "priority": priority,
    }
    if batch.callback_url:  # only then: keys stored before callbacks existed still match
        request["callback_url"] = batch.callback_url
    return fingerprint(request)


def job_submit_distributed(
    *, batch: BatchSpec, priority: str, idempotency_key: str | None,
    request_id: str | None = None,
) -> tuple[str, bool]:
    """Enqueue one task per image, all or none. Returns (job id, duplicate?).

    The same Idempotency-Key with a different request raises IdempotencyKeyReused (422); with
    the same request it answers the first job even if the tenant has since reached its
    storage quota, which refuses (413) any new submission."""
    if priority not in PRIORITIES:
        raise ApplicationError(
            f"Unknown priority {priority!r}.", code="invalid_priority",
            extra={"allowed": list(PRIORITIES)},
        )
    config = queue_config()
    if batch.total > config.max_queued_tasks:
        raise ApplicationError(
            f"The batch has {batch.total} images; the queue holds at most "
            f"{config.max_queued_tasks} open tasks (MAX_QUEUED_TASKS).",
            code="batch_exceeds_queue_cap", extra={"cap": config.max_queued_tasks},
        )
    queue = broker().queue
    tenant = batch.caller.tenant
    if idempotency_key:
        # A key is one tenant's: another tenant's same key is another request.
        idempotency_key = f"{tenant}/{idempotency_key}"
    request = batch_fingerprint(batch, priority) if idempotency_key else ""
    # A repeat answers its first job, before the quota is asked (enqueue.lua checks the key
    # again, atomically, for two submissions racing with the same key).
    if idempotency_key:
        first = queue.find_idempotent(idempotency_key, request)
        if first:
            return first, True
    usage_check_not_full(tenant=tenant)
    if batch.uploads:
        # Uploads are stored before the enqueue: check first that they will be used (Redis
        # reachable). Without uploads enqueue.lua checks that by running.
        queue.ping()
    stored = uploads_store(uploads=batch.uploads, owner=tenant)
    image_ids = [*batch.image_ids, *(meta["id"] for meta in stored)]
    job_id = new_job_id()
    steps_json = steps_to_json(batch.steps)
    messages = [
        TaskMessage(
            kind="image", job_id=job_id, index=index, image_id=image_id,
            steps=tuple(steps_json), output_format=batch.output_format, quality=batch.quality,
            effort=batch.effort, keep_metadata=batch.keep_metadata,
            request_id=request_id if is_request_id(request_id) else None, tenant=tenant,
        )
        for index, image_id in enumerate(image_ids)
    ]
    fields = {
        "mode": "distributed",
        "created_at_iso": timezone.now().isoformat(),
        "output_format": batch.output_format or "",
        "quality": batch.quality,
        "pipeline": json.dumps(steps_json),
    }
    if batch.callback_url:
        fields.update(callback_url=batch.callback_url, callback_base=batch.base_url)
    try:
        submitted = queue.submit(
            job_id=job_id, priority=priority, messages=messages, job_fields=fields,
            idempotency_key=idempotency_key, fingerprint=request, tenant=tenant,
        )
    except QueueFull as exc:  # TenantQueueFull: the caller's own cap, not the cluster's
        mine = isinstance(exc, TenantQueueFull)
        raise ApplicationError(
            f"{'Your' if mine else 'The'} queue is full: {exc}. "
            f"Retry after {exc.retry_after_s} s.",
            status=429, code="tenant_queue_full" if mine else "queue_full",
            extra={"retry_after_s": exc.retry_after_s, "open_tasks": exc.open_tasks,
                   "cap": exc.cap, "uploaded_images": [m["id"] for m in stored]},
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    return submitted.job_id, submitted.duplicate


def job_cancel(*, job_id: str, viewer: Caller) -> int:
    """Cancel a distributed job's tasks that have not started; running ones finish."""
    job = job_get(job_id, viewer)
    if job is None:
        raise ApplicationError(f"Unknown job id {job_id!r}.", status=404, code="job_not_found",
                               extra={"job": job_id})
    if job["mode"] != "distributed":
        raise ApplicationError(
            f"Job {job_id} ran in the API process and is already finished; only distributed "
            "jobs can be cancelled.", status=409, code="job_not_cancellable",
        )
    try:
        return broker().queue.cancel_job(job_id)
    except NotFound as exc:
        raise ApplicationError(f"Unknown job id {job_id!r}.", status=404, code="job_not_found",
                               extra={"job": job_id}) from exc

