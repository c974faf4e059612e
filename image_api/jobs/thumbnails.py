"""Reads: a job's output previews (thumbnails), made beside each output by whatever made it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from image_api.errors import ApplicationError
from image_api.images.selectors import get_storage
from image_api.jobs.selectors import job_or_404
from image_api.tenancy import Caller


def thumbnail_path(job_id: str, result: dict[str, Any]) -> Path | None:
    """The stored preview of a completed result, or None (not completed, made before
    thumbnails existed, or expired). The key is derived from the job id, index and image id."""
    if result.get("status") != "completed" or not result.get("output_key"):
        return None
    storage = get_storage()
    try:
        path = storage.path_for_key(
            storage.thumbnail_key(job_id, result["index"], result["image"]))
    except ValueError:
        return None
    return path if path.is_file() else None


def job_thumbnail(job_id: str, index: int, viewer: Caller) -> Path:
    """Path of the WebP preview of result ``index`` of a job; 404 ApplicationError if there is
    none."""
    job = job_or_404(job_id, viewer)
    results = job["results"]
    path = thumbnail_path(job_id, results[index]) if 0 <= index < len(results) else None
    if path is None:
        raise ApplicationError(
            f"Result {index} of job {job_id} has no thumbnail.",
            status=404, code="thumbnail_not_found", extra={"job": job_id, "index": index},
        )
    return path
