"""Static files (Swagger UI and ReDoc assets, the browsable API's, the admin's, the console's)
served by Django itself when ``SERVE_STATIC`` is on (project/urls.py).

A path that climbs out of the static directories (``/static/../../etc/passwd``) is refused
with a JSON 400 ``bad_path``. Scanners send such paths by the thousand, so a refusal is an
info line, at most one per :data:`TRAVERSAL_LOG_INTERVAL_S` per process, carrying how many
were left out since the previous one, rather than Django's error line with a traceback for
each (``django.security.SuspiciousFileOperation``) and a warning (``django.request``).
"""

from __future__ import annotations

import logging

from django.contrib.staticfiles.views import serve
from django.core.exceptions import SuspiciousFileOperation
from django.http import HttpRequest, HttpResponseBase

from common.logs import LogThrottle
from image_api.errors import error_response

logger = logging.getLogger(__name__)

TRAVERSAL_LOG_INTERVAL_S = 60.0
PATH_LOGGED = 200  # characters of the path a line keeps: a scanner chooses its length
traversal_log = LogThrottle(TRAVERSAL_LOG_INTERVAL_S)


def serve_static(request: HttpRequest, path: str) -> HttpResponseBase:
    """The static file at ``path`` from the installed apps' ``static/`` directories (404 if
    none has it); 400 for a path that leads outside them."""
    try:
        return serve(request, path, insecure=True)
    except SuspiciousFileOperation as exc:
        suppressed = traversal_log.allow()
        if suppressed is not None:
            logger.info("static.traversal_refused",
                        extra={"path": request.path[:PATH_LOGGED], "suppressed": suppressed})
        response = error_response(exc)
        # Already logged (or left out) here: Django's request logger would add a warning
        # line for every 400 (django.utils.log.log_response reads this flag).
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response
