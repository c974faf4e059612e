"""Request ids, API paths without their trailing slash, and the cross-origin guard."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import is_valid_path

from common.logs import log_context
from image_api.bodies import (
    UnsupportedCharset,
    body_limit,
    check_charset,
    content_charset,
    too_large_message,
)

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


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a browser sends when a page of this very site made the request, or a user typed it.
SAME_SITE_FETCHES = frozenset({"same-origin", "none"})


def cross_origin(request: HttpRequest) -> str | None:
    """Why a state-changing request comes from another site, or None. Browsers send
    ``Sec-Fetch-Site`` and/or ``Origin`` with every cross-site POST, form posts included;
    clients that are not browsers (curl, the CLI) send neither and are not affected."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in SAME_SITE_FETCHES:
        return f"Sec-Fetch-Site: {fetch_site}"
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    if origin == "null":  # sandboxed frames, file: pages, privacy-redirected requests
        return "Origin: null"
    expected = f"{request.scheme}://{request.get_host()}"
    return None if origin == expected else f"Origin {origin} is not {expected}"


class CrossOriginGuardMiddleware:
    """Refuses every state-changing request that a browser sent from another origin (403
    ``cross_origin_refused``), before any view parses its body: a page elsewhere cannot make a
    visitor's browser submit a job, cancel one or act on dead letters here. Reads (GET, HEAD,
    OPTIONS) are unaffected."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in UNSAFE_METHODS:
            reason = cross_origin(request)
            if reason is not None:
                return JsonResponse(
                    {"error": "cross_origin_refused",
                     "message": f"State-changing requests from another origin are refused "
                                f"({reason}).",
                     "reason": reason},
                    status=403,
                )
        return self.get_response(request)


class BodyLimitMiddleware:
    """The body rules of image_api/bodies.py for any server (the ASGI front door applies them
    first under gunicorn): a charset that is not text is a 415 ``unsupported_charset``, a
    ``Content-Length`` over the body's cap a 413 ``request_too_large``, before a byte of the
    body is read or spooled to disk."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        content_type = request.META.get("CONTENT_TYPE", "")
        api = settings.API_SETTINGS
        limit = body_limit(content_type, max_request_bytes=api.bodies.max_request_bytes,
                           max_json_bytes=api.bodies.max_json_bytes)
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"error": "bad_request",
                                 "message": "Content-Length is not a number."}, status=400)
        try:
            check_charset(content_charset(content_type))
        except UnsupportedCharset as exc:
            return JsonResponse({"error": exc.code, "message": str(exc),
                                 "charset": exc.charset}, status=415)
        if declared > limit:
            return JsonResponse(
                {"error": "request_too_large", "message": too_large_message(declared, limit,
                                                                            content_type),
                 "limit": limit},
                status=413,
            )
        return self.get_response(request)
