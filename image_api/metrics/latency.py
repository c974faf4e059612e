"""The HTTP latency histogram, kept by a Django middleware that runs under WSGI and ASGI.

Labels stay bounded: the method (the usual verbs, else ``other``), the route *pattern*
(``api/jobs/<str:job_id>/``, never the path; ``unmatched`` when no route matched) and the
status class (``2xx``...). Under gunicorn each process writes its own samples to files in
PROMETHEUS_MULTIPROC_DIR and a scrape adds them up (prometheus-client's multiprocess mode).

What it times: from Django receiving the request to the view returning its response. A
streamed response (SSE, a zip) is timed to its first byte; requests refused in front of
Django (project/asgi_middleware.py: 408, 413, 504) are not seen here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from prometheus_client import Histogram, disable_created_metrics

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# No `_created` series: multiprocess mode cannot have them, so one process would differ.
disable_created_metrics()
# Not in prometheus-client's default registry: the scrape builds its own (views.py).
REQUEST_SECONDS = Histogram(
    "imgproc_http_request_duration_seconds",
    "Time from Django receiving a request to the view's response (first byte of a stream)",
    ["method", "route", "status"],
    buckets=BUCKETS_S,
    registry=None,
)


def labels_of(request: HttpRequest, response: HttpResponseBase) -> tuple[str, str, str]:
    method = request.method if request.method in METHODS else "other"
    match = getattr(request, "resolver_match", None)
    route = (match.route or match.view_name or "unnamed") if match is not None else "unmatched"
    return method or "other", route, f"{response.status_code // 100}xx"


def observe(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
    REQUEST_SECONDS.labels(*labels_of(request, response)).observe(time.perf_counter() - started)


class HttpMetricsMiddleware:
    """First in MIDDLEWARE: times every request Django answers. Sync or async, whichever
    chain Django builds (gunicorn's WSGI workers, or uvicorn's ASGI ones)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        response = self.get_response(request)
        observe(request, response, started)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        pending: Awaitable[HttpResponseBase] = self.get_response(request)
        response = await pending
        observe(request, response, started)
        return response
