"""Writes: storing uploads, validating a batch, running it in a local pool, recording the job.

Every check runs before anything is stored or executed: a request that fails validation
leaves no upload, no output and no job behind.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, Future
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from distributed.ids import new_job_id
from distributed.jobs import job_status, result_entry
from image_api import pools
from image_api.errors import ApplicationError
from image_api.models import Job
from image_api.runner import failure, run_one
from image_api.selectors import get_storage
from imaging.codecs import ImageError, ImageInfo, inspect_image
from imaging.pipeline import Step, parse_pipeline, steps_to_json
from imaging.processing import Limits

logger = logging.getLogger(__name__)

DEFAULT_QUALITY = 90


def display_name(name: str | None, limit: int = 200) -> str:
    """A client file name made safe for messages: no control characters, bounded length."""
    text = "".join(ch for ch in (name or "") if unicodedata.category(ch)[0] != "C")
    return text.strip()[:limit] or "(unnamed)"


# --- uploads -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidatedUpload:
    """An uploaded file that passed `inspect_image`, not yet stored."""

    index: int
    name: str
    file: UploadedFile
    info: ImageInfo

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()


def uploads_validate(*, files: Sequence[UploadedFile]) -> list[ValidatedUpload]:
    """Inspect every file; the first bad one raises an ApplicationError naming it."""
    max_bytes = int(settings.MAX_UPLOAD_BYTES)
    max_pixels = int(settings.MAX_IMAGE_PIXELS)
    validated = []
    for index, upload in enumerate(files):
        name = display_name(upload.name)
        where = {"file": {"index": index, "name": name}}
        if upload.size is not None and upload.size > max_bytes:
            raise ApplicationError(
                f"files[{index}] ({name!r}): the file is {upload.size} bytes; "
                f"the limit is {max_bytes} bytes.",
                status=413, code="file_too_large", extra=where,
            )
        upload.seek(0)
        try:
            info = inspect_image(upload.read(), max_bytes=max_bytes, max_pixels=max_pixels)
        except ImageError as exc:
            raise ApplicationError(
                f"files[{index}] ({name!r}): {exc}", status=exc.status, code=exc.code, extra=where
            ) from exc
        validated.append(ValidatedUpload(index=index, name=name, file=upload, info=info))
    return validated


def uploads_store(*, uploads: Sequence[ValidatedUpload]) -> list[dict[str, Any]]:
    """Store validated uploads; returns their metadata in order."""
    storage = get_storage()
    metas = []
    for upload in uploads:
        image_id = storage.save_upload(upload.read(), upload.info, upload.name)
        meta = storage.image_meta(image_id)
        metas.append(meta if meta is not None else {"id": image_id})
    return metas


def image_upload_batch(*, files: Sequence[UploadedFile]) -> list[dict[str, Any]]:
    """Validate all files, then store all of them (none if any is bad)."""
    if not files:
        raise ApplicationError(
            "No files: send one or more images as multipart/form-data under the field 'files'.",
            status=400, code="no_files",
        )
    return uploads_store(uploads=uploads_validate(files=files))


# --- batches -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSpec:
    """A validated batch: run `image_ids` then the (not yet stored) `uploads` through `steps`."""

    steps: list[Step]
    image_ids: list[str]
    uploads: list[ValidatedUpload]
    output_format: str | None
    quality: int

    @property
    def total(self) -> int:
        return len(self.image_ids) + len(self.uploads)


def _check_image_ids(image_ids: Sequence[str]) -> None:
    storage = get_storage()
    for index, image_id in enumerate(image_ids):
        if storage.image_meta(image_id) is None:  # samples are generated on first use
            raise ApplicationError(
                f"images[{index}]: unknown image id {image_id!r}.",
                status=400, code="unknown_image", extra={"image": image_id, "index": index},
            )


def batch_prepare(
    *,
    pipeline_data: Mapping[str, Any],
    image_ids: Sequence[str] | None,
    files: Sequence[UploadedFile],
    output_format: str | None,
    quality: int | None,
) -> BatchSpec:
    """Validate everything about a batch request without storing or running anything.

    No image ids and no files means the server's sample set.
    """
    steps = parse_pipeline(pipeline_data)
    image_ids = list(image_ids or [])
    limit = int(settings.MAX_BATCH_IMAGES)
    if len(image_ids) + len(files) > limit:
        raise ApplicationError(
            f"The batch has {len(image_ids) + len(files)} images; the limit is {limit}.",
            status=400, code="too_many_images", extra={"limit": limit},
        )
    _check_image_ids(image_ids)
    uploads = uploads_validate(files=files)
    if not image_ids and not uploads:
        image_ids = get_storage().sample_ids()[:limit]
    return BatchSpec(
        steps=steps,
        image_ids=image_ids,
        uploads=uploads,
        output_format=output_format,
        quality=DEFAULT_QUALITY if quality is None else quality,
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
    """Store the batch's uploads, run every image in the mode's pool, record the job; its id."""
    if mode not in pools.MODES:
        raise ValueError(f"unknown local mode {mode!r}")
    created_at = timezone.now()
    stored = uploads_store(uploads=batch.uploads)
    image_ids = [*batch.image_ids, *(meta["id"] for meta in stored)]
    job_id = new_job_id()
    steps_json = steps_to_json(batch.steps)
    common = {
        "media_root": str(settings.MEDIA_ROOT),
        "steps_json": steps_json,
        "job_id": job_id,
        "output_format": batch.output_format,
        "quality": batch.quality,
        "limits": Limits(max_pixels=int(settings.MAX_IMAGE_PIXELS)),
    }
    tasks = [{**common, "image_id": image_id, "index": i} for i, image_id in enumerate(image_ids)]
    started = time.perf_counter()
    outcomes = _run_tasks(mode, tasks)
    wall_seconds = time.perf_counter() - started
    results = [
        _result_entry(index, image_id, outcome)
        for index, (image_id, outcome) in enumerate(zip(image_ids, outcomes, strict=True))
    ]
    job = Job.objects.create(
        id=job_id,
        mode=mode,
        status=job_status(
            total=len(results), completed=sum(r["status"] == "completed" for r in results),
            failed=sum(r["status"] != "completed" for r in results), cancelled=0, started=True,
        ),
        created_at=created_at,
        finished_at=timezone.now(),
        total=len(results),
        output_format=batch.output_format,
        quality=batch.quality,
        pipeline=steps_json,
        results=results,
        stats={
            "wall_seconds": round(wall_seconds, 4),
            "images_per_second": round(len(results) / wall_seconds, 3) if wall_seconds else None,
        },
    )
    logger.info(
        "job finished id=%s mode=%s status=%s total=%d wall_s=%.3f",
        job.id, mode, job.status, job.total, wall_seconds,
    )
    return job_id
