"""Serializers shared by several views: the strict base of every JSON input serializer, and
the output serializers (also used by the distributed-mode views)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.urls import reverse
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request

from image_api.errors import unknown_fields_error

# --- input: strict JSON types, no unknown keys -------------------------------------------------


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


# --- output ------------------------------------------------------------------------------------


class ImageMetaSerializer(serializers.Serializer):
    id = serializers.CharField()
    format = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    bytes = serializers.IntegerField(required=False, allow_null=True)
    original_name = serializers.CharField(required=False, allow_null=True)


class ImageListItemSerializer(ImageMetaSerializer):
    kind = serializers.ChoiceField(choices=["upload", "sample"])
    url = serializers.URLField(read_only=True, allow_null=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["url"] = absolute_url(
            self.context.get("request"), "image_api:image-file", image_id=data["id"]
        )
        return data


class TimingSerializer(serializers.Serializer):
    filter = serializers.CharField()
    ms = serializers.FloatField()


class ResultErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class StepSerializer(serializers.Serializer):
    filter = serializers.CharField()
    params = serializers.DictField()


class JobResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    image = serializers.CharField()
    status = serializers.ChoiceField(choices=["completed", "failed"])
    output_url = serializers.URLField(read_only=True, allow_null=True)
    format = serializers.CharField(allow_null=True)
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    bytes = serializers.IntegerField(allow_null=True)
    timings = TimingSerializer(many=True)
    total_ms = serializers.FloatField(allow_null=True)
    error = ResultErrorSerializer(allow_null=True)


class JobStatsSerializer(serializers.Serializer):
    wall_seconds = serializers.FloatField()
    images_per_second = serializers.FloatField(allow_null=True)


class JobSerializer(serializers.Serializer):
    """A job as returned by the batch endpoints and GET /api/jobs/<id>/."""

    id = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    total = serializers.IntegerField()
    output_format = serializers.CharField(
        allow_null=True, help_text="Requested output format; null means each input's own format."
    )
    quality = serializers.IntegerField()
    pipeline = StepSerializer(many=True)
    stats = JobStatsSerializer()
    results_url = serializers.URLField(
        read_only=True, allow_null=True, help_text="Zip of every completed output."
    )
    results = JobResultSerializer(many=True)

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        request = self.context.get("request")
        data["results_url"] = absolute_url(request, "image_api:job-results-zip", job_id=data["id"])
        for result in data["results"]:
            if result["status"] == "completed":
                result["output_url"] = absolute_url(
                    request, "image_api:job-output", job_id=data["id"], index=result["index"]
                )
        return data


class DistributedJobStatsSerializer(serializers.Serializer):
    wall_seconds = serializers.FloatField(allow_null=True)
    images_per_second = serializers.FloatField(allow_null=True)


class DistributedResultSerializer(JobResultSerializer):
    status = serializers.ChoiceField(
        choices=["completed", "failed", "cancelled", "pending", "running", "delayed"])
    task_id = serializers.CharField()
    state = serializers.CharField()
    attempts = serializers.IntegerField()
    worker = serializers.CharField(allow_null=True)
    queued_ms = serializers.IntegerField(allow_null=True, help_text="Wait before its last start.")
    run_ms = serializers.IntegerField(allow_null=True, help_text="Last start to finish.")
    retry_at = serializers.DateTimeField(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    delayed = serializers.IntegerField()


class DistributedJobSerializer(JobSerializer):
    priority = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    progress = ProgressSerializer()
    results = DistributedResultSerializer(many=True)
    stats = DistributedJobStatsSerializer()


def job_serializer_class(job: dict[str, Any]) -> type[JobSerializer]:
    return DistributedJobSerializer if job.get("mode") == "distributed" else JobSerializer


def absolute_url(request: Request | None, name: str, **kwargs: Any) -> str:
    path = reverse(name, kwargs=kwargs)
    return request.build_absolute_uri(path) if request is not None else path
