"""The service's own endpoints: the API root (what ``make run``'s banner links first),
readiness (health) and liveness probes, the filter list."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from image_api.meta.selectors import health_report
from imaging.filters import filter_schemas

# (name in the answer, URL name, what it is for)
ENTRY_POINTS = (
    ("docs", "docs", "Interactive API documentation (Swagger UI)."),
    ("schema", "schema", "The OpenAPI schema."),
    ("health", "image_api:health", "Readiness: database, storage and Redis."),
    ("filters", "image_api:filters", "Every filter with its parameters."),
    ("images", "image_api:images", "Upload images; list uploads and samples."),
    ("usage", "image_api:usage", "Your storage usage against your quota, and your limits."),
    ("process_batch_threading", "image_api:process-batch-threading",
     "Run a batch now in this API process's threads."),
    ("process_batch_multiprocessing", "image_api:process-batch-multiprocessing",
     "Run a batch now in this API process's process pool."),
    ("process_batch_distributed", "image_api:process-batch-distributed",
     "Queue a batch for the Redis workers (202)."),
    ("jobs", "image_api:jobs", "Jobs of every mode, newest first, with their progress."),
    ("callbacks_secret", "image_api:callbacks-secret",
     "Your key for checking the signature of job-finished callbacks."),
    ("workers_status", "image_api:workers-status", "Workers, queue figures and alerts."),
    ("dead_letters", "image_api:dead-letters", "Tasks that failed for good."),
    ("workers_history", "image_api:workers-history",
     "Queue depth, throughput and failures over the last hour."),
    ("console", "console:overview", "The operations console (HTML): charts, jobs, dead "
     "letters, workers."),
)


class ApiRootApi(APIView):
    """GET /api/: where everything is."""

    @extend_schema(
        summary="Entry points of the API",
        responses={200: inline_serializer(name="ApiRoot", fields={
            "endpoints": serializers.DictField(child=inline_serializer(
                name="ApiEntryPoint",
                fields={"url": serializers.URLField(), "description": serializers.CharField()},
            )),
        })},
    )
    def get(self, request: Request) -> Response:
        return Response({"endpoints": {
            name: {"url": reverse(url_name, request=request), "description": text}
            for name, url_name, text in ENTRY_POINTS
        }})


class ProbeView(APIView):
    """Open to orchestrators' probes: no key, no throttle, nothing tenant-specific shown."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []


class LivenessApi(ProbeView):
    """GET /api/health/live/: 200 whenever Django serves a request; checks no dependency, so
    a database or Redis outage never makes an orchestrator restart the API."""

    @extend_schema(
        summary="Liveness: the process serves requests",
        responses={200: inline_serializer(name="Liveness", fields={
            "status": serializers.ChoiceField(choices=["ok"]),
        })},
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


@extend_schema_field(OpenApiTypes.NUMBER)
class NumberField(serializers.Field):
    """A number passed through as it is (an int stays an int)."""

    def to_representation(self, value: Any) -> Any:
        return value


class DependencySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "error", "not_configured"])
    message = serializers.CharField(required=False, help_text="Why it failed.")


class FilterParamSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    default = serializers.JSONField(allow_null=True)
    description = serializers.CharField()
    minimum = NumberField(required=False)
    maximum = NumberField(required=False)
    choices = serializers.ListField(child=serializers.JSONField(), required=False)
    nullable = serializers.BooleanField(required=False)


class FilterSchemaSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    params = FilterParamSerializer(many=True)


class HealthApi(ProbeView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Health"

        status = serializers.ChoiceField(choices=["ok", "degraded", "error"])
        version = serializers.CharField()
        dependencies = serializers.DictField(
            child=DependencySerializer(),
            help_text='Per dependency: {"status": "ok" | "error" | "not_configured", ...}.',
        )

    @extend_schema(responses={200: OutputSerializer, 503: OutputSerializer})
    def get(self, request: Request) -> Response:
        report = health_report()
        status = 503 if report["status"] == "error" else 200
        return Response(self.OutputSerializer(report).data, status=status)


class FilterListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "FilterList"

        filters = serializers.ListField(
            child=FilterSchemaSerializer(),
            help_text="Each filter: name, description and params (name, type, default, "
            "description, minimum/maximum/choices/nullable when set).",
        )

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer({"filters": filter_schemas()}).data)
