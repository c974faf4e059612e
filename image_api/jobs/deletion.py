"""Deleting a job of any mode with its outputs (DELETE /api/jobs/<id>/)."""

from __future__ import annotations

import logging

from distributed.errors import JobNotFinished, NotFound
from image_api.broker import broker
from image_api.errors import ApplicationError
from image_api.images.selectors import get_storage
from image_api.jobs.selectors import job_get
from image_api.models import Job
from image_api.tenancy import ANONYMOUS, Caller
from image_api.usage.services import usage_give_back

logger = logging.getLogger(__name__)


def job_delete(*, job_id: str, viewer: Caller) -> None:
    """Delete a finished job of any mode, with its outputs: the database row or the Redis
    records first, then the files, whose bytes go back to the tenant's usage. 404 for an
    unknown job or another tenant's; 409 while a distributed job has open tasks."""
    job = job_get(job_id, viewer)
    if job is None:
        raise ApplicationError(f"Unknown job id {job_id!r}.", status=404, code="job_not_found",
                               extra={"job": job_id})
    if job["mode"] == "distributed":
        try:
            broker().queue.delete_job(job_id, tenant=job.get("owner") or ANONYMOUS)
        except JobNotFinished as exc:
            raise ApplicationError(
                f"Job {job_id} still has tasks pending or running: cancel it first "
                f"(POST /api/jobs/{job_id}/cancel/), then delete it once they have ended.",
                status=409, code="job_not_finished", extra={"job": job_id}) from exc
        except NotFound as exc:
            raise ApplicationError(f"Unknown job id {job_id!r}.", status=404,
                                   code="job_not_found", extra={"job": job_id}) from exc
    else:
        Job.objects.filter(pk=job_id).delete()
    usage_give_back(get_storage().remove_outputs(job_id))
    logger.info("job deleted id=%s mode=%s", job_id, job["mode"])
