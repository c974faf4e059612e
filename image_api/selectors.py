"""Reads: storage, images, jobs and health. Writes live in services.py."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

import project
from distributed.errors import DistributedError
from image_api.broker import broker, queue_config
from image_api.distributed_selectors import distributed_job_get
from image_api.errors import ApplicationError
from image_api.models import Job
from imaging.names import download_name, unique_names
from imaging.storage import Storage

logger = logging.getLogger(__name__)


def get_storage() -> Storage:
    """The shared image storage under MEDIA_ROOT (cheap to build; settings may change in tests)."""
    return Storage(settings.MEDIA_ROOT)


# --- images ------------------------------------------------------------------------------------


def _upload_ids(storage: Storage) -> list[str]:
    if not storage.uploads_dir.is_dir():
        return []
    return sorted(path.stem for path in storage.uploads_dir.glob("img_*.json"))


def image_list() -> list[dict[str, Any]]:
    """Metadata of every uploaded image (newest first), then the sample images."""
    storage = get_storage()
    uploads = [meta for meta in map(storage.image_meta, _upload_ids(storage)) if meta]
    uploads.sort(key=lambda meta: meta.get("created_at") or "", reverse=True)
    samples = [meta for meta in map(storage.image_meta, storage.sample_ids()) if meta]
    return [{**meta, "kind": "upload"} for meta in uploads] + [
        {**meta, "kind": "sample"} for meta in samples
    ]


def image_file(image_id: str) -> tuple[Path, dict[str, Any]]:
    """Path and metadata of a stored image; 404 ApplicationError if unknown."""
    storage = get_storage()
    meta = storage.image_meta(image_id)  # samples are generated on first use
    if meta is None:
        raise ApplicationError(
            f"Unknown image id {image_id!r}.", status=404, code="image_not_found",
            extra={"image": image_id},
        )
    return storage.image_path(image_id), meta


# --- jobs --------------------------------------------------------------------------------------


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


# --- health ------------------------------------------------------------------------------------


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        logger.warning("database health check failed: %s", exc)
        return {"status": "error", "message": str(exc)}
    return {"status": "ok"}


def _check_storage() -> dict[str, Any]:
    root = Path(settings.MEDIA_ROOT)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return {"status": "error", "path": str(root), "message": exc.strerror or str(exc)}
    if not os.access(root, os.W_OK | os.X_OK):
        return {"status": "error", "path": str(root), "message": "not writable"}
    return {"status": "ok", "path": str(root)}


def _check_redis() -> dict[str, Any]:
    if not queue_config().redis_url:
        return {"status": "not_configured"}
    try:
        broker().ping()
    except DistributedError as exc:
        return {"status": "error", "message": str(exc)}
    return {"status": "ok"}


# name -> check; each returns {"status": "ok" | "error" | "not_configured", ...}.
HEALTH_CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _check_database,
    "storage": _check_storage,
    "redis": _check_redis,
}


# Without these the API cannot serve anything; without Redis only the distributed mode stops.
ESSENTIAL = ("database", "storage")


def health_report() -> dict[str, Any]:
    """{"status": "ok" | "degraded" | "error", "version", "dependencies": {name: result}}.

    "error": an essential dependency failed; "degraded": only Redis did (the threading and
    multiprocessing modes still work)."""
    dependencies = {name: check() for name, check in HEALTH_CHECKS.items()}
    failed = {name for name, dep in dependencies.items() if dep["status"] == "error"}
    status = "error" if failed & set(ESSENTIAL) else "degraded" if failed else "ok"
    return {
        "status": status,
        "version": project.__version__,
        "dependencies": dependencies,
    }
