"""Writes of the distributed mode: submit a batch as one task per image, manage dead letters."""

from __future__ import annotations

import hashlib
import json

from django.utils import timezone

from distributed.errors import NotFound, QueueFull
from distributed.ids import new_job_id
from distributed.keys import PRIORITIES
from distributed.messages import TaskMessage, fingerprint, is_request_id
from image_api.broker import broker, queue_config
from image_api.errors import ApplicationError
from image_api.models import Job
from image_api.services import BatchSpec, uploads_store
from imaging.pipeline import steps_to_json


def batch_fingerprint(batch: BatchSpec, priority: str) -> str:
    """What makes two submissions "the same request" for an Idempotency-Key: the pipeline,
    the named images, the output options, the priority and the bytes of every upload."""
    return fingerprint({
        "steps": steps_to_json(batch.steps),
        "images": list(batch.image_ids),
        "uploads": [hashlib.sha256(upload.read()).hexdigest() for upload in batch.uploads],
        "output_format": batch.output_format,
        "quality": batch.quality,
        "priority": priority,
    })


def job_submit_distributed(
    *, batch: BatchSpec, priority: str, idempotency_key: str | None,
    request_id: str | None = None,
) -> tuple[str, bool]:
    """Enqueue one task per image, all or none. Returns (job id, duplicate?).

    The same Idempotency-Key with a different request raises IdempotencyKeyReused (422)."""
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
    request = batch_fingerprint(batch, priority) if idempotency_key else ""
    if batch.uploads:
        # Uploads are stored before the enqueue: check first that they will be used (Redis
        # reachable, not a repeat). Without uploads enqueue.lua does both checks atomically.
        if idempotency_key:
            first = queue.find_idempotent(idempotency_key, request)
            if first:
                return first, True
        queue.ping()
    stored = uploads_store(uploads=batch.uploads)
    image_ids = [*batch.image_ids, *(meta["id"] for meta in stored)]
    job_id = new_job_id()
    steps_json = steps_to_json(batch.steps)
    messages = [
        TaskMessage(
            kind="image", job_id=job_id, index=index, image_id=image_id,
            steps=tuple(steps_json), output_format=batch.output_format, quality=batch.quality,
            request_id=request_id if is_request_id(request_id) else None,
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
    try:
        submitted = queue.submit(
            job_id=job_id, priority=priority, messages=messages, job_fields=fields,
            idempotency_key=idempotency_key, fingerprint=request,
        )
    except QueueFull as exc:
        raise ApplicationError(
            f"The queue is full: {exc}. Retry after {exc.retry_after_s} s.",
            status=429, code="queue_full",
            extra={"retry_after_s": exc.retry_after_s, "open_tasks": exc.open_tasks,
                   "cap": exc.cap, "uploaded_images": [m["id"] for m in stored]},
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    return submitted.job_id, submitted.duplicate


def dead_letters_act(*, action: str, task_ids: list[str] | None) -> int:
    """Re-queue or discard dead letters (``task_ids`` None = all); the number changed."""
    if action == "requeue":
        return broker().requeue_dead_letters(task_ids)
    if action == "discard":
        return broker().discard_dead_letters(task_ids)
    raise ApplicationError(f"Unknown action {action!r}.", code="invalid_action",
                           extra={"allowed": ["requeue", "discard"]})


def job_cancel(*, job_id: str) -> int:
    """Cancel a distributed job's tasks that have not started; running ones finish."""
    if Job.objects.filter(pk=job_id).exists():
        raise ApplicationError(
            f"Job {job_id} ran in the API process and is already finished; only distributed "
            "jobs can be cancelled.", status=409, code="job_not_cancellable",
        )
    try:
        return broker().queue.cancel_job(job_id)
    except NotFound as exc:
        raise ApplicationError(f"Unknown job id {job_id!r}.", status=404, code="job_not_found",
                               extra={"job": job_id}) from exc
