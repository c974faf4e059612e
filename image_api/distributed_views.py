"""Views of the distributed mode: submit, worker status, dead letters."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.logs import current_request_id
from distributed.keys import PRIORITIES
from image_api.distributed_selectors import dead_letters_list, workers_status
from image_api.distributed_services import (
    dead_letters_act,
    job_cancel,
    job_submit_distributed,
)
from image_api.errors import ApplicationError
from image_api.parsers import JSONParser
from image_api.selectors import job_get
from image_api.serializers import (
    StrictBooleanField,
    StrictCharField,
    StrictInputSerializer,
    absolute_url,
)
from image_api.views import (
    JOB_ID_PARAMETER,
    JOB_ID_PATTERN,
    SEED_EXAMPLE,
    ErrorSerializer,
    JobCreateLocalApi,
    checked_job_id,
    parse_batch_request,
)

# Task ids are "<job id>.<index>" (distributed.keys.task_id_for).
TASK_ID_PATTERN = JOB_ID_PATTERN.removesuffix("$") + r"\.[0-9]{1,9}$"
# A dead-letter page starts at most this far in (Redis sorted sets hold at most 2^32 - 1).
MAX_DEAD_LETTER_OFFSET = 2**32


def request_id_of(request: Request) -> str | None:
    """The id of this HTTP request (RequestIdMiddleware), carried to the worker's log lines
    for its tasks."""
    return getattr(request, "request_id", None) or current_request_id()


class SubmittedSerializer(serializers.Serializer):
    id = serializers.CharField()
    mode = serializers.CharField()
    status = serializers.CharField()
    total = serializers.IntegerField()
    priority = serializers.CharField()
    status_url = serializers.URLField()
    duplicate = serializers.BooleanField(help_text="True when an Idempotency-Key matched.")


class JobCreateDistributedApi(APIView):
    """POST /api/process-batch/distributed/: enqueue one task per image, answer 202."""

    class InputSerializer(JobCreateLocalApi.InputSerializer):
        class Meta:
            ref_name = "DistributedBatchOptions"

        priority = serializers.ChoiceField(choices=PRIORITIES, required=False, default="normal")

    @extend_schema(
        summary="Queue a batch for the Redis workers",
        parameters=[OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
            description="Retrying with the same key and the same request returns the first "
            "job instead of a new one (200, duplicate=true); the same key with a different "
            "request answers 422 idempotency_key_reused.",
        )],
        request={
            "application/json": InputSerializer,
            "multipart/form-data": JobCreateLocalApi.MultipartInputSerializer,
        },
        responses={202: SubmittedSerializer, 400: ErrorSerializer, 413: ErrorSerializer,
                   415: ErrorSerializer, 422: ErrorSerializer, 429: ErrorSerializer,
                   503: ErrorSerializer},
        examples=[SEED_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        batch, data = parse_batch_request(request, self.InputSerializer)
        key = request.headers.get("Idempotency-Key") or None
        job_id, duplicate = job_submit_distributed(
            batch=batch, priority=data["priority"], idempotency_key=key,
            request_id=request_id_of(request),
        )
        body = {
            "id": job_id,
            "mode": "distributed",
            "status": "queued",
            "total": batch.total,
            "priority": data["priority"],
            "status_url": absolute_url(request, "image_api:job-detail", job_id=job_id),
            "duplicate": duplicate,
        }
        if duplicate:
            job = job_get(job_id)
            if job is not None:
                body.update(status=job["status"], total=job["total"], priority=job["priority"])
        return Response(SubmittedSerializer(body).data, status=200 if duplicate else 202)


class JobCancelApi(APIView):
    @extend_schema(
        summary="Cancel a distributed job's tasks that have not started",
        parameters=[JOB_ID_PARAMETER],
        request=None,
        responses={200: inline_serializer(name="JobCancelResult", fields={
            "id": serializers.CharField(), "cancelled": serializers.IntegerField(),
            "status": serializers.CharField()}),
            404: ErrorSerializer, 409: ErrorSerializer, 503: ErrorSerializer},
    )
    def post(self, request: Request, job_id: str) -> Response:
        cancelled = job_cancel(job_id=checked_job_id(job_id))
        job = job_get(job_id)
        return Response({"id": job_id, "cancelled": cancelled,
                         "status": job["status"] if job else "cancelled"})


class WorkersStatusApi(APIView):
    @extend_schema(
        summary="Workers, queue figures, throughput and alerts",
        description="Cost grows with the number of workers, not of tasks.",
        responses={200: OpenApiTypes.OBJECT, 503: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(workers_status())


class DeadLetterApi(APIView):
    parser_classes = [JSONParser]

    class PageSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DeadLetterPage"

        offset = serializers.IntegerField(min_value=0, max_value=MAX_DEAD_LETTER_OFFSET,
                                          default=0, help_text="Dead letters to skip.")
        limit = serializers.IntegerField(min_value=1, max_value=500, default=50,
                                         help_text="Page size.")

    class ActionSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "DeadLetterAction"

        action = serializers.ChoiceField(choices=["requeue", "discard"])
        task_ids = serializers.ListField(
            child=StrictCharField(max_length=200, validators=[RegexValidator(
                TASK_ID_PATTERN, "Not a task id (job_<32 hex digits>.<index>).")]),
            required=False, allow_empty=False, max_length=1000,
            help_text="Which dead letters (task ids as listed); omit and set all=true for all.",
        )
        all = StrictBooleanField(required=False, default=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if bool(attrs.get("task_ids")) == bool(attrs.get("all")):
                raise serializers.ValidationError("Give either task_ids or all=true.")
            return attrs

    @extend_schema(
        summary="List dead-lettered tasks (newest first)",
        parameters=[PageSerializer],
        responses={200: OpenApiTypes.OBJECT, 400: ErrorSerializer, 503: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        page = self.PageSerializer(data=request.query_params)
        if not page.is_valid():
            raise ApplicationError(
                f"Bad pagination: offset must be 0 to {MAX_DEAD_LETTER_OFFSET}, limit 1 to 500 "
                f"({'; '.join(f'{k}: {v[0]}' for k, v in page.errors.items())})",
                code="invalid_pagination", extra={"fields": page.errors},
            )
        return Response(dead_letters_list(**page.validated_data))

    @extend_schema(
        summary="Re-queue or discard dead letters",
        request=ActionSerializer,
        responses={200: inline_serializer(name="DeadLetterActionResult", fields={
            "action": serializers.CharField(), "changed": serializers.IntegerField()}),
            400: ErrorSerializer, 503: ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = self.ActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        changed = dead_letters_act(
            action=data["action"], task_ids=None if data["all"] else data["task_ids"]
        )
        return Response({"action": data["action"], "changed": changed})


def dashboard(request: HttpRequest) -> HttpResponse:
    """GET /dashboard/: a live HTML view of /api/workers/status/ (no build step, no CDN)."""
    return render(request, "image_api/dashboard.html",
                  {"status_url": reverse("image_api:workers-status")})
