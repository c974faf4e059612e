"""Request ids, and API paths without their trailing slash."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import is_valid_path

from common.logs import log_context

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is kept only if it cannot forge log fields or headers: short, no spaces,
# quotes, '=' or control characters.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_for(incoming: str | None) -> str:
    """The caller's id when it is short and safe, else a fresh one."""
    if incoming and SAFE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` if safe, else a new one),
    returns it in the ``X-Request-ID`` response header and puts it in every log line of the
    request, gunicorn's access line included. Services read it with
    ``common.logs.current_request_id()``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
        # For lines logged after this returns (django.request's 4xx/5xx warnings).
        request.request_id = request_id  # type: ignore[attr-defined]
        with log_context(request_id=request_id):
            response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class ApiTrailingSlashMiddleware:
    """Accept API paths without their trailing slash.

    Django's APPEND_SLASH answers such a request with a 301 redirect, which clients do not
    follow for a POST (curl drops the body). Under /api/, a path that only resolves with a
    trailing slash is routed there internally instead."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith("/api/") and not path.endswith("/"):
            urlconf = getattr(request, "urlconf", None)
            if not is_valid_path(path, urlconf) and is_valid_path(f"{path}/", urlconf):
                request.path_info = f"{path}/"
                request.path = f"{request.path}/"
        return self.get_response(request)
