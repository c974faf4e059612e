"""Request parsing: strict input serializers (no unknown keys, strict JSON types), ids in
URLs, and the batch request of every mode (JSON or multipart)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.request import Request

from image_api import parsers as strict_json
from image_api.errors import ApplicationError, unknown_fields_error
from image_api.jobs.services import BatchSpec, batch_prepare
from image_api.schema import JOB_ID_PATTERN
from image_api.tenancy import caller
from imaging.storage import is_image_id


class StrictInputSerializer(serializers.Serializer):
    """Base of the JSON input serializers: a key no field declares (a misspelling such as
    "filtres") is a 400 ``unknown_fields``, never silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = [str(key) for key in data if key not in self.fields]
            if unknown:
                raise unknown_fields_error(unknown, accepted=list(self.fields))
        return super().to_internal_value(data)


class StrictInputSchema(OpenApiSerializerExtension):
    """In the OpenAPI schema, a StrictInputSerializer is a closed object
    (``additionalProperties: false``) described by its own docstring, not by this base's."""

    target_class = StrictInputSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        schema["additionalProperties"] = False
        cls = self.target if isinstance(self.target, type) else type(self.target)
        own_doc = vars(cls).get("__doc__")
        if own_doc:
            schema["description"] = own_doc.strip()
        else:
            schema.pop("description", None)
        return schema


@extend_schema_field(OpenApiTypes.BINARY)
class UploadField(serializers.FileField):
    """A file part of a multipart request (documented as binary, not as a URL)."""


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer. Strings ("90") and booleans are refused; an integral float (90.0) is
    the same JSON number and accepted."""

    default_error_messages = {"invalid": "A valid integer is required (a JSON number)."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float):
            if not data.is_integer():  # also false for NaN and infinities
                self.fail("invalid")
            data = int(data)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON true or false only (not "yes", 1 or "true")."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictCharField(serializers.CharField):
    """A JSON string only (DRF's CharField would turn 42 into "42")."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# The multipart fields that may carry images, in the order their files join the batch.
FILE_FIELDS = ("files", "file", "images", "image")


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def checked_job_id(job_id: str) -> str:
    """The job id of a URL. One that cannot be a job id is a 404 before any lookup: it never
    reaches the database, the storage or a Redis key."""
    if not re.fullmatch(JOB_ID_PATTERN, job_id):
        raise ApplicationError(
            f"Unknown job id {job_id!r}: job ids look like job_<32 hex digits>.",
            status=404, code="job_not_found", extra={"job": job_id},
        )
    return job_id


def checked_image_id(image_id: str) -> str:
    """The image id of a URL; 404 image_not_found before any lookup if it cannot be one."""
    if not is_image_id(image_id):
        raise ApplicationError(
            f"Unknown image id {image_id!r}: image ids look like img_<32 hex digits> or "
            "sample-<name>.", status=404, code="image_not_found", extra={"image": image_id},
        )
    return image_id


def request_files(request: Request) -> list:
    """Uploaded files from the accepted multipart fields; any other file field is an error."""
    unexpected = sorted(set(request.FILES) - set(FILE_FIELDS))
    if unexpected:
        raise ApplicationError(
            f"Unexpected file field(s) {', '.join(unexpected)}; send images under 'files'.",
            status=400, code="unexpected_file_field", extra={"fields": unexpected},
        )
    return [upload for field in FILE_FIELDS for upload in request.FILES.getlist(field)]


def request_options(request: Request) -> Any:
    """The batch options: the JSON body, or the JSON string in the 'options' form field."""
    if not request.content_type.startswith(FORM_TYPES):
        return request.data
    as_text = sorted(set(request.POST) & set(FILE_FIELDS))
    if as_text:
        raise ApplicationError(
            f"Form field(s) {', '.join(map(repr, as_text))} must be file parts (with a file "
            "name), not text.", code="not_a_file", extra={"fields": as_text},
        )
    unknown = sorted(set(request.POST) - {"options"})
    if unknown:
        raise ApplicationError(
            f"Unknown form field(s) {', '.join(map(repr, unknown))}; send the batch options "
            "as a JSON string in 'options' and images under 'files'.",
            code="unknown_fields", extra={"fields": unknown},
        )
    raw = request.data.get("options")
    if raw is None:
        raise ApplicationError(
            "Missing 'options': send the batch options as a JSON body "
            "(Content-Type: application/json) or, with multipart uploads, as a JSON string "
            "in the form field 'options'.",
            status=400, code="missing_options",
        )
    if hasattr(raw, "read"):  # sent as a file part: read no more than a JSON may hold
        raw = raw.read(settings.API_SETTINGS.bodies.max_json_bytes + 1).decode("utf-8", "replace")
    try:
        options = strict_json.loads(raw)
    except strict_json.BOUNDS_ERRORS:
        raise  # image_api/errors.py gives each its status
    except ValueError as exc:
        raise ApplicationError(
            f"'options' is not valid JSON: {exc}", status=400, code="invalid_options"
        ) from exc
    if not isinstance(options, dict):
        raise ApplicationError(
            "'options' must be a JSON object.", status=400, code="invalid_options"
        )
    return options


def parse_batch_request(
    request: Request, serializer_class: type[serializers.Serializer]
) -> tuple[BatchSpec, dict[str, Any]]:
    """Validate a batch request of any mode (JSON or multipart) without storing anything:
    (the batch, the validated options)."""
    files = request_files(request)
    options = request_options(request)
    serializer = serializer_class(data=options)
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    batch = batch_prepare(
        caller=caller(request),
        pipeline_data=options,
        image_ids=data.get("images"),
        files=files,
        output_format=data.get("output_format"),
        quality=data.get("quality"),
        effort=data.get("effort", "balanced"),
        keep_metadata=bool(data.get("keep_metadata", False)),
        callback_url=data.get("callback_url") or "",
        base_url=request.build_absolute_uri("/"),
    )
    return batch, data


# A page starts at most this far in (Redis sorted sets hold at most 2^32 - 1 members).
MAX_PAGE_OFFSET = 2**32
MAX_PAGE_LIMIT = 200


class PageQuerySerializer(serializers.Serializer):
    """offset/limit query parameters of a listing."""

    offset = serializers.IntegerField(min_value=0, max_value=MAX_PAGE_OFFSET, default=0,
                                      help_text="Entries to skip.")
    limit = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_LIMIT, default=50,
                                     help_text="Page size.")


def parse_page_query(request: Request, serializer_class: type[PageQuerySerializer]) -> Any:
    """The validated query parameters of a listing: a bad offset or limit is a 400
    ``invalid_pagination``, any other bad parameter a 400 ``invalid_request``."""
    query = serializer_class(data=request.query_params)
    if query.is_valid():
        return query.validated_data
    paging = {name: errors for name, errors in query.errors.items()
              if name in ("offset", "limit")}
    if paging:
        raise ApplicationError(
            f"Bad pagination: offset must be 0 to {MAX_PAGE_OFFSET}, limit 1 to "
            f"{MAX_PAGE_LIMIT} ({'; '.join(f'{k}: {v[0]}' for k, v in paging.items())})",
            code="invalid_pagination", extra={"fields": paging},
        )
    raise serializers.ValidationError(query.errors)
