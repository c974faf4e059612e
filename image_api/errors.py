"""One place that turns errors into JSON bodies: `{"error": code, "message": text, ...details}`.

DRF calls `exception_handler` for every exception raised in an API view. Each known exception
type has a converter (registered with `@converts(...)`) that returns an `ApplicationError`;
the first registered converter whose type matches wins, so register specific types before
their bases. To map a new domain error (e.g. a full queue -> 429), add a converter:

    @converts(distributed.errors.QueueFull)
    def _queue_full(exc):
        return ApplicationError("The queue is full", status=429, code="queue_full")

Django-level errors outside DRF views (unknown URL, a crash in middleware) reach
`json_handler404` / `json_handler500` etc., which answer JSON for /api/ paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousFileOperation,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

from distributed.errors import IdempotencyKeyReused, NotFound, RedisUnavailable
from image_api.bodies import UnsupportedCharset
from image_api.parsers import JSONTooComplex, JSONTooDeep, JSONTooLarge
from image_api.usage.errors import StorageQuotaExceeded, UsageUnavailable
from imaging.codecs import ImageError
from imaging.pipeline import PipelineError
from imaging.storage import InsufficientStorage

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    """An error the client can act on, rendered as JSON with an HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "bad_request",
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


Converter = Callable[[Any], ApplicationError]
_CONVERTERS: list[tuple[tuple[type[BaseException], ...], Converter]] = []


def converts(*types: type[BaseException]) -> Callable[[Converter], Converter]:
    """Register a function turning exceptions of `types` into an `ApplicationError`."""

    def register(func: Converter) -> Converter:
        _CONVERTERS.append((types, func))
        return func

    return register


def to_application_error(exc: BaseException) -> ApplicationError | None:
    """The `ApplicationError` for `exc`, or None when it is unexpected (a 500)."""
    if isinstance(exc, ApplicationError):
        return exc
    for types, func in _CONVERTERS:
        if isinstance(exc, types):
            return func(exc)
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: JSON body for every known error, None (-> 500) otherwise."""
    error = to_application_error(exc)
    if error is None:
        return None
    if error.status >= 500:
        logger.warning("api error %s: %s", error.code, error.message)
    return Response(error.to_dict(), status=error.status, headers=error.headers or None)


# --- converters --------------------------------------------------------------------------------


@converts(ImageError)
def _image_error(exc: ImageError) -> ApplicationError:
    return ApplicationError(str(exc), status=exc.status, code=exc.code)


@converts(UnsupportedCharset)
def _unsupported_charset(exc: UnsupportedCharset) -> ApplicationError:
    return ApplicationError(str(exc), status=415, code=exc.code, extra={"charset": exc.charset})


@converts(JSONTooLarge)
def _json_too_large(exc: JSONTooLarge) -> ApplicationError:
    return ApplicationError(str(exc), status=413, code=exc.code, extra={"limit": exc.limit})


@converts(JSONTooComplex, JSONTooDeep)
def _json_too_costly(exc: JSONTooComplex | JSONTooDeep) -> ApplicationError:
    return ApplicationError(str(exc), status=400, code=exc.code)


@converts(RedisUnavailable)
def _redis_unavailable(exc: RedisUnavailable) -> ApplicationError:
    return ApplicationError(
        f"{exc} The distributed mode (jobs, workers, dead letters) is unavailable until Redis "
        "is back; the threading and multiprocessing modes still work.",
        status=503, code="redis_unavailable", headers={"Retry-After": "5"},
    )


@converts(IdempotencyKeyReused)
def _idempotency_key_reused(exc: IdempotencyKeyReused) -> ApplicationError:
    # Stripe's convention: a key names one request; another body under it is a client error.
    return ApplicationError(
        "This Idempotency-Key was already used with a different request (other pipeline, "
        "images, uploads, output options or priority). Send a new key for a new request.",
        status=422, code="idempotency_key_reused",
    )


@converts(NotFound)
def _distributed_not_found(exc: NotFound) -> ApplicationError:
    return ApplicationError(str(exc), status=404, code="not_found")


@converts(StorageQuotaExceeded)
def _storage_quota_exceeded(exc: StorageQuotaExceeded) -> ApplicationError:
    usage = {"used_bytes": exc.used_bytes, "quota_bytes": exc.quota_bytes}
    if exc.requested_bytes:
        message = (f"Storing these {exc.requested_bytes} bytes would pass your storage quota: "
                   f"you use {exc.used_bytes} of {exc.quota_bytes} bytes. Nothing was stored; "
                   "delete images or jobs (DELETE /api/images/<id>/, /api/jobs/<id>/) first.")
    else:
        message = (f"You are at or over your storage quota ({exc.used_bytes} of "
                   f"{exc.quota_bytes} bytes): delete images or jobs (DELETE "
                   "/api/images/<id>/, /api/jobs/<id>/) before submitting more.")
    return ApplicationError(message, status=413, code="storage_quota_exceeded",
                            extra={"usage": usage, "requested_bytes": exc.requested_bytes})


@converts(InsufficientStorage)
def _insufficient_storage(exc: InsufficientStorage) -> ApplicationError:
    # The figures stay on the server: how full its disk is is none of a tenant's business.
    return ApplicationError(
        "The server's image storage is below its free-space floor (MIN_FREE_DISK_MB): "
        "nothing was stored. Retry later.", status=507, code="insufficient_storage",
    )


@converts(UsageUnavailable)
def _usage_unavailable(exc: UsageUnavailable) -> ApplicationError:
    return ApplicationError(
        f"{exc} Storage usage is counted in Redis: uploads are refused until it is back "
        "(batches of stored images and samples still run in the threading and "
        "multiprocessing modes).",
        status=503, code="usage_unavailable", headers={"Retry-After": "5"},
    )


@converts(PipelineError)
def _pipeline_error(exc: PipelineError) -> ApplicationError:
    body = exc.to_dict()
    code = body.pop("error", "invalid_pipeline")
    message = body.pop("message", str(exc))
    return ApplicationError(message, status=400, code=code, extra=body)


def first_message(detail: Any, path: str = "") -> str:
    """The first human-readable message in a DRF error detail, prefixed with its field path."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            return first_message(value, f"{path}.{field}" if path and field else path or field)
    if isinstance(detail, list) and detail:
        if all(isinstance(item, str) for item in detail):
            return first_message(detail[0], path)
        for index, item in enumerate(detail):
            if item:
                return first_message(item, f"{path}[{index}]")
    text = str(detail) if detail not in (None, [], {}) else "Invalid input."
    return f"{path}: {text}" if path else text


UNKNOWN_FIELD = "unknown_field"


def unknown_fields_error(
    names: list[str], *, accepted: list[str]
) -> drf_exceptions.ValidationError:
    """What an input serializer raises for keys it does not declare (-> 400 unknown_fields)."""
    text = f"Unknown field; accepted fields: {', '.join(accepted)}."
    return drf_exceptions.ValidationError(
        {name: [drf_exceptions.ErrorDetail(text, code=UNKNOWN_FIELD)] for name in names}
    )


def _unknown_fields(detail: Any) -> ApplicationError | None:
    if not isinstance(detail, dict):
        return None
    names = [name for name, errors in detail.items()
             if isinstance(errors, list) and errors
             and all(getattr(error, "code", None) == UNKNOWN_FIELD for error in errors)]
    if not names:
        return None
    accepted = str(detail[names[0]][0]).partition("; ")[2]
    return ApplicationError(
        f"Unknown field(s) {', '.join(map(repr, names))}; {accepted}",
        status=400, code="unknown_fields", extra={"fields": names},
    )


@converts(drf_exceptions.ValidationError)
def _validation_error(exc: drf_exceptions.ValidationError) -> ApplicationError:
    detail = exc.detail
    unknown = _unknown_fields(detail)
    if unknown is not None:
        return unknown
    extra = {"fields": detail} if isinstance(detail, dict) else {"errors": detail}
    return ApplicationError(first_message(detail), status=400, code="invalid_request", extra=extra)


@converts(drf_exceptions.APIException)
def _api_exception(exc: drf_exceptions.APIException) -> ApplicationError:
    headers = {}
    wait = getattr(exc, "wait", None)
    if wait is not None:
        headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    auth_header = getattr(exc, "auth_header", None)  # set by DRF on 401s (NotAuthenticated...)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    detail = exc.detail
    code = detail.code if isinstance(detail, drf_exceptions.ErrorDetail) else None
    return ApplicationError(
        first_message(detail),
        status=exc.status_code,
        code=code or exc.default_code,
        headers=headers,
    )


@converts(Http404)
def _not_found(exc: Http404) -> ApplicationError:
    return ApplicationError("Not found.", status=404, code="not_found")


@converts(PermissionDenied)
def _permission_denied(exc: PermissionDenied) -> ApplicationError:
    return ApplicationError("Permission denied.", status=403, code="permission_denied")


@converts(RequestDataTooBig)
def _request_too_big(exc: RequestDataTooBig) -> ApplicationError:
    return ApplicationError(
        "The request body is larger than the server accepts.", status=413, code="request_too_large"
    )


@converts(TooManyFilesSent, TooManyFieldsSent)
def _too_many_parts(exc: SuspiciousOperation) -> ApplicationError:
    return ApplicationError(str(exc), status=400, code="too_many_parts")


@converts(SuspiciousFileOperation)
def _path_outside(exc: SuspiciousFileOperation) -> ApplicationError:
    # The message names the server's directories: it stays out of the answer.
    return ApplicationError("The path leads outside the directory it is served from.",
                            status=400, code="bad_path")


@converts(SuspiciousOperation)
def _suspicious(exc: SuspiciousOperation) -> ApplicationError:
    return ApplicationError("Bad request.", status=400, code="bad_request")


# --- Django-level handlers (project/urls.py handler400/403/404/500) ------------------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def _json(error: ApplicationError) -> JsonResponse:
    return JsonResponse(error.to_dict(), status=error.status)


def error_response(exc: BaseException) -> JsonResponse:
    """The JSON answer to ``exc`` for a view outside DRF (an unknown error: a 500 body)."""
    return _json(to_application_error(exc) or ApplicationError(
        "Internal server error.", status=500, code="internal_error"))


def json_handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    error = to_application_error(exception) if exception is not None else None
    return _json(error or ApplicationError("Bad request.", status=400, code="bad_request"))


def json_handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return _json(ApplicationError("Permission denied.", status=403, code="permission_denied"))


def json_handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    message = f"No API endpoint at {request.path}."
    return _json(ApplicationError(message, status=404, code="not_found"))


def json_handler500(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request)
    return _json(
        ApplicationError("Internal server error.", status=500, code="internal_error")
    )
