"""GET /metrics: the Prometheus text format.

Who may scrape (docs/operations.md, "Metrics"):
- ``METRICS_TOKEN`` set: ``Authorization: Bearer <METRICS_TOKEN>`` (a read-only credential
  for Prometheus), or an admin API key;
- else, AUTH_REQUIRED on: an admin API key (``image_api.tenancy``'s rules);
- else: anyone (the local default, like the rest of the API).

The reply adds up the HTTP histograms, callback and throttle counters of every API process
of this instance (gunicorn's workers write them to PROMETHEUS_MULTIPROC_DIR) and reads the
cluster from Redis.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from image_api.auth import key_from_headers
from image_api.errors import ApplicationError
from image_api.metrics.callbacks import CALLBACK_ATTEMPTS, CallbacksWaitingCollector
from image_api.metrics.collector import ClusterCollector
from image_api.metrics.latency import REQUEST_SECONDS
from image_api.metrics.throttle import THROTTLE_UNAVAILABLE, THROTTLED
from image_api.tenancy import caller_from_headers

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="metrics"'}


def check_access(request: HttpRequest) -> None:
    """Raise a 401 or 403 :class:`ApplicationError` unless the request may scrape."""
    token = str(settings.METRICS_TOKEN)
    presented = key_from_headers(request.META)
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return
    if token and presented is None:
        raise ApplicationError("Scraping needs the METRICS_TOKEN or an admin key: send "
                               "`Authorization: Bearer <token>`.", status=401,
                               code="authentication_required", headers=_CHALLENGE)
    if not caller_from_headers(request).admin:  # 401 for a bad key, or none when required
        raise ApplicationError("Only an admin key (or the METRICS_TOKEN) may read the "
                               "metrics.", status=403, code="admin_required")


def registry() -> CollectorRegistry:
    """A registry for one scrape: every process's HTTP samples, and the cluster's."""
    scrape = CollectorRegistry(auto_describe=False)
    if settings.PROMETHEUS_MULTIPROC_DIR:
        MultiProcessCollector(scrape, path=str(settings.PROMETHEUS_MULTIPROC_DIR))
    else:
        scrape.register(REQUEST_SECONDS)
        scrape.register(CALLBACK_ATTEMPTS)
        scrape.register(THROTTLED)
        scrape.register(THROTTLE_UNAVAILABLE)
    scrape.register(ClusterCollector())
    scrape.register(CallbacksWaitingCollector())
    return scrape


def metrics(request: HttpRequest) -> HttpResponse:
    try:
        if request.method not in ("GET", "HEAD"):
            raise ApplicationError(f"Method {request.method} is not allowed on /metrics.",
                                   status=405, code="method_not_allowed",
                                   headers={"Allow": "GET, HEAD"})
        check_access(request)
    except ApplicationError as error:
        response = JsonResponse(error.to_dict(), status=error.status)
        for name, value in error.headers.items():
            response[name] = value
        return response
    body = b"" if request.method == "HEAD" else generate_latest(registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
