"""OpenAPI pieces shared by the views: the error body, id parameters, examples,
binary answers, and absolute URLs in output serializers."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request

from imaging.codecs import CONTENT_TYPES

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": serializers.CharField(help_text="Machine-readable code, e.g. corrupt_image."),
        "message": serializers.CharField(help_text="What went wrong, for humans."),
    },
)


# The shapes of the ids the API hands out (services.new_job_id, Storage.save_upload / samples).
JOB_ID_PATTERN = r"^job_[0-9a-f]{32}$"


IMAGE_ID_PATTERN = r"^(img_[0-9a-f]{32}|sample-[a-z0-9][a-z0-9-]{0,63})$"


JOB_ID_PARAMETER = OpenApiParameter(
    "job_id", str, OpenApiParameter.PATH, pattern=JOB_ID_PATTERN,
    description="A job id as returned by a batch endpoint: job_<32 hex digits>.",
)


IMAGE_ID_PARAMETER = OpenApiParameter(
    "image_id", str, OpenApiParameter.PATH, pattern=IMAGE_ID_PATTERN,
    description="An upload id (img_<32 hex digits>) or a sample id (sample-<name>).",
)


BINARY_IMAGE = {(200, content_type): OpenApiTypes.BINARY for content_type in
                sorted(set(CONTENT_TYPES.values()))}


SEED_EXAMPLE = OpenApiExample(
    "sharpen then edges (sample images)",
    value={
        "filters": ["sharpen", "edges"],
        "filter_params": {
            "sharpen": {"intensity": 3},
            "edges": {"threshold1": 50, "threshold2": 150},
        },
    },
    request_only=True,
)


STEPS_EXAMPLE = OpenApiExample(
    "steps form, named uploads, PNG output",
    value={
        "steps": [{"filter": "blur", "params": {"radius": 2}}, {"filter": "grayscale"}],
        "images": ["img_0123456789abcdef0123456789abcdef"],
        "output_format": "png",
        "quality": 90,
    },
    request_only=True,
)


class BinaryContentNegotiation(BaseContentNegotiation):
    """File endpoints answer bytes whatever the Accept header says; errors render as JSON."""

    def select_parser(self, request: Request, parsers: list) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: list, format_suffix: Any = None) -> Any:
        return renderers[0], renderers[0].media_type


# Task ids are "<job id>.<index>" (distributed.keys.task_id_for).
TASK_ID_PATTERN = JOB_ID_PATTERN.removesuffix("$") + r"\.[0-9]{1,9}$"


def absolute_url(request: Request | None, name: str, **kwargs: Any) -> str:
    path = reverse(name, kwargs=kwargs)
    return request.build_absolute_uri(path) if request is not None else path
