"""GET /api/jobs/<id>/events/: a job's progress as Server-Sent Events.

An async view: under ASGI an open stream is a coroutine waiting on a timer, not a worker
thread. Each poll reads the job's summary (the database or Redis, both blocking clients) in a
thread through ``sync_to_async``. Events:

- ``event: progress`` with the job as one item of ``GET /api/jobs/``, at once and on every
  change (polled every SSE_POLL_SECONDS);
- a ``: keepalive`` comment every SSE_KEEPALIVE_SECONDS;
- ``event: end`` with the final summary once the job is finished; the stream then closes.

A stream lasts at most SSE_MAX_SECONDS (the client reconnects: EventSource does so by
itself) and a process holds at most SSE_MAX_STREAMS at once (more answer 503).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET

from distributed.errors import RedisUnavailable
from image_api.errors import ApplicationError
from image_api.jobs.selectors import job_summary
from image_api.jobs.serializers import JobSummarySerializer
from image_api.parsing import checked_job_id
from image_api.tenancy import Caller, caller_from_headers

logger = logging.getLogger(__name__)

FINISHED = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})

_open_streams = 0


def _render(request: HttpRequest, summary: dict[str, Any]) -> str:
    return json.dumps(JobSummarySerializer(summary, context={"request": request}).data,
                      separators=(",", ":"))


def event(name: str, data: str) -> bytes:
    """One SSE event (``data`` is one line of JSON)."""
    return f"event: {name}\ndata: {data}\n\n".encode()


async def _events(request: HttpRequest, job_id: str, first: dict[str, Any],
                  viewer: Caller) -> AsyncIterator[bytes]:
    global _open_streams
    poll_s = float(settings.SSE_POLL_SECONDS)
    keepalive_s = float(settings.SSE_KEEPALIVE_SECONDS)
    stop_at = time.monotonic() + float(settings.SSE_MAX_SECONDS)
    # Counted from the first read: a response never iterated holds nothing.
    _open_streams += 1
    try:
        summary: dict[str, Any] | None = first
        last = ""
        last_sent = time.monotonic()
        while summary is not None:
            data = _render(request, summary)
            if summary["status"] in FINISHED:
                yield event("end", data)
                return
            now = time.monotonic()
            if data != last:
                yield event("progress", data)
                last, last_sent = data, now
            elif now - last_sent >= keepalive_s:
                yield b": keepalive\n\n"
                last_sent = now
            if now >= stop_at:
                return  # bounded stream: the client reconnects
            await asyncio.sleep(poll_s)
            try:
                summary = await sync_to_async(job_summary, thread_sensitive=False)(
                    job_id, viewer)
            except RedisUnavailable:
                logger.warning("job events: redis unavailable", extra={"job": job_id})
                return  # the client reconnects and gets a 503 until Redis is back
    finally:
        _open_streams -= 1


@require_GET
async def job_events(request: HttpRequest, job_id: str) -> HttpResponse:
    """The SSE stream of one job (see the module docstring); 404 JSON for an unknown job."""
    try:
        checked_job_id(job_id)
        # A plain Django view: DRF's authentication does not run here, the same rules do.
        viewer = await sync_to_async(caller_from_headers, thread_sensitive=False)(request)
        try:
            first = await sync_to_async(job_summary, thread_sensitive=False)(job_id, viewer)
        except RedisUnavailable as exc:
            raise ApplicationError(f"Redis is unavailable: {exc}", status=503,
                                   code="redis_unavailable") from exc
        if first is None:
            raise ApplicationError(f"Unknown job id {job_id!r}.", status=404,
                                   code="job_not_found", extra={"job": job_id})
        if _open_streams >= int(settings.SSE_MAX_STREAMS):
            raise ApplicationError(
                "Too many open event streams on this server; retry shortly.", status=503,
                code="too_many_streams", headers={"Retry-After": "5"})
    except ApplicationError as error:
        response = JsonResponse(error.to_dict(), status=error.status)
        for name, value in error.headers.items():
            response[name] = value
        return response
    response = StreamingHttpResponse(_events(request, job_id, first, viewer),
                                     content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
