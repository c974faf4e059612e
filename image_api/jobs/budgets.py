"""Budgets of a batch, checked before anything is stored or run: each image's (pixels after
every step, the cost model's CPU estimate: imaging.costs) and, for the local modes, the
whole batch's time within one request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings

from image_api.errors import ApplicationError
from image_api.images.services import ValidatedUpload
from image_api.jobs import pools
from imaging.costs import Frame, check_budget, input_frame
from imaging.formats import output_format_for
from imaging.pipeline import PipelineError, Step
from imaging.processing import Limits

if TYPE_CHECKING:
    from image_api.jobs.services import BatchSpec


def image_limits() -> Limits:
    """The budget of one image, from the settings (the workers read the same variables)."""
    return Limits(
        max_pixels=int(settings.MAX_IMAGE_PIXELS), max_jpeg_scans=int(settings.MAX_JPEG_SCANS),
        max_cost_ms=float(settings.MAX_TASK_COST_MS),
        time_limit_s=float(settings.TASK_TIME_LIMIT_SECONDS),
    )


def check_budgets(steps: list[Step], images: Sequence[tuple[str, dict[str, Any]]],
                   uploads: Sequence[ValidatedUpload], output_format: str | None) -> float:
    """Refuse, before anything is stored or run, a pipeline that would make an image over the
    pixel cap or cost more than MAX_TASK_COST_MS on any image of the batch (the cost model of
    imaging.costs, from each image's size). ``images``: (id, metadata) of the stored ones."""
    frames: list[tuple[str, Frame, str]] = []
    for index, (image_id, meta) in enumerate(images):
        frames.append((f"images[{index}] ({image_id})",
                       input_frame(meta["width"], meta["height"], meta["format"]),
                       meta["format"]))
    for upload in uploads:
        info = upload.info
        frames.append((f"files[{upload.index}] ({upload.name!r})",
                       input_frame(info.width, info.height, info.format, info.mode),
                       info.format))
    limits = image_limits()
    total_ms = 0.0
    for where, frame, fmt in frames:
        try:
            total_ms += check_budget(
                steps, frame, input_format=fmt, output_format=output_format_for(fmt, output_format),
                max_pixels=limits.max_pixels, max_cost_ms=limits.max_cost_ms).total_ms
        except PipelineError as exc:
            body = exc.to_dict()
            code, message = body.pop("error"), body.pop("message")
            raise ApplicationError(f"{where}: {message}", status=400, code=code,
                                   extra={**body, "image": where}) from exc
    return total_ms


def check_local_batch_fits(mode: str, batch: BatchSpec) -> None:
    """A local-mode batch answers within its request: refuse (400 ``batch_too_expensive``),
    before anything is stored, one whose estimated run on the mode's pool would not fit in
    half of REQUEST_DEADLINE_SECONDS. The distributed mode takes any size."""
    parallel = int(settings.THREAD_POOL_SIZE if mode == pools.THREADING
                   else settings.PROCESS_POOL_SIZE)
    if mode == pools.THREADING:
        parallel = min(parallel, int(settings.LOCAL_MAX_CONCURRENT_IMAGES))
    budget_ms = float(settings.REQUEST_DEADLINE_SECONDS) * 1000.0 / 2
    expected_ms = batch.estimated_ms / max(parallel, 1)
    if expected_ms > budget_ms:
        raise ApplicationError(
            f"This batch is estimated at {expected_ms / 1000:.0f} s in the {mode} mode, more "
            f"than it may take in one request ({budget_ms / 1000:.0f} s, half of "
            "REQUEST_DEADLINE_SECONDS). Submit it to /api/process-batch/distributed/ instead: "
            "that mode takes batches of any length and answers at once.",
            status=400, code="batch_too_expensive",
            extra={"estimated_s": round(expected_ms / 1000, 1),
                   "allowed_s": round(budget_ms / 1000, 1)})
