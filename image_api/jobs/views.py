"""Job endpoints: submit a batch in any mode, read a job, its outputs and zip, cancel."""

from __future__ import annotations

import tempfile
import zipfile

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.logs import current_request_id
from distributed.keys import PRIORITIES
from image_api.errors import ApplicationError
from image_api.jobs import pools
from image_api.jobs.deletion import job_delete
from image_api.jobs.selectors import (
    job_get,
    job_list,
    job_output,
    job_output_files,
)
from image_api.jobs.serializers import (
    JOB_MODES,
    JOB_STATUSES,
    DistributedJobSerializer,
    JobListSerializer,
    JobSerializer,
    SubmittedSerializer,
    job_serializer_class,
)
from image_api.jobs.services import job_cancel, job_run_local, job_submit_distributed
from image_api.jobs.thumbnails import job_thumbnail
from image_api.parsing import (
    PageQuerySerializer,
    StrictBooleanField,
    StrictCharField,
    StrictInputSerializer,
    StrictIntegerField,
    UploadField,
    checked_job_id,
    parse_batch_request,
    parse_page_query,
)
from image_api.schema import (
    BINARY_IMAGE,
    JOB_ID_PARAMETER,
    SEED_EXAMPLE,
    STEPS_EXAMPLE,
    BinaryContentNegotiation,
    ErrorSerializer,
    absolute_url,
)
from image_api.tenancy import caller
from imaging.codecs import CONTENT_TYPES, EFFORTS, OUTPUT_FORMATS


class JobCreateLocalApi(APIView):
    """POST /api/process-batch/<threading|multiprocessing>/: run a batch now, answer the job."""

    mode: str = pools.THREADING

    class InputSerializer(StrictInputSerializer):
        class Meta:
            ref_name = "BatchOptions"

        filters = serializers.JSONField(
            required=False, help_text='Seed form: filter names in order, e.g. ["sharpen", "edges"].'
        )
        filter_params = serializers.JSONField(
            required=False, help_text='Seed form: {"<filter>": {"<param>": value}}.'
        )
        steps = serializers.JSONField(
            required=False,
            help_text='Steps form (instead of filters): [{"filter": "blur", "params": {...}}].',
        )
        images = serializers.ListField(
            child=StrictCharField(max_length=128),
            required=False,
            help_text="Ids of earlier uploads or samples. Omitted (and no files): the samples.",
        )
        output_format = serializers.ChoiceField(
            choices=OUTPUT_FORMATS, required=False, allow_null=True,
            help_text="Default: each input's format (PNG if it is not an output format).",
        )
        quality = StrictIntegerField(
            min_value=1, max_value=100, required=False, allow_null=True,
            help_text="JPEG/WebP quality, default 90.",
        )
        effort = serializers.ChoiceField(
            choices=EFFORTS, required=False, default="balanced",
            help_text="Encoder speed against file size: fast, balanced (default) or small.",
        )
        keep_metadata = StrictBooleanField(
            required=False, default=False,
            help_text="Copy the input's EXIF into the output (its orientation reset). By "
            "default EXIF is dropped; the ICC profile is kept either way.",
        )
        callback_url = StrictCharField(
            required=False, allow_blank=True, max_length=2048,
            help_text="POSTed the job (JSON, signed: see GET /api/callbacks/secret/) when it "
            "finishes, retried with backoff; the attempts are shown in the job's `callback`. "
            "http(s) only; a host on a private or loopback address is refused "
            "(400 invalid_callback_url) unless CALLBACK_ALLOW_PRIVATE is set.",
        )

    class MultipartInputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "BatchMultipart"

        files = serializers.ListField(child=UploadField(), required=False)
        options = serializers.CharField(help_text="The JSON body's object, as a string.")

    @extend_schema(
        summary="Process a batch in this API process's pool",
        request={
            "application/json": InputSerializer,
            "multipart/form-data": MultipartInputSerializer,
        },
        responses={200: JobSerializer, 400: ErrorSerializer, 413: ErrorSerializer,
                   415: ErrorSerializer},
        examples=[SEED_EXAMPLE, STEPS_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        batch, _ = parse_batch_request(request, self.InputSerializer)
        job_id = job_run_local(mode=self.mode, batch=batch)
        job = job_get(job_id, batch.caller)
        return Response(JobSerializer(job, context={"request": request}).data)


class JobListApi(APIView):
    class QuerySerializer(PageQuerySerializer):
        class Meta:
            ref_name = "JobListQuery"

        status = serializers.ChoiceField(choices=JOB_STATUSES, required=False,
                                         help_text="Only jobs with this status.")
        mode = serializers.ChoiceField(choices=JOB_MODES, required=False,
                                       help_text="Only jobs of this mode.")

    @extend_schema(
        summary="List jobs of every mode (newest first)",
        operation_id="jobs_list",
        description="A summary per job (counts, not per-image results). While Redis is "
        "down the local jobs are listed alone, with distributed_unavailable=true.",
        parameters=[QuerySerializer],
        responses={200: JobListSerializer, 400: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        query = parse_page_query(request, self.QuerySerializer)
        page = job_list(viewer=caller(request), offset=query["offset"], limit=query["limit"],
                        status=query.get("status"), mode=query.get("mode"))
        return Response(JobListSerializer(page, context={"request": request}).data)


class JobDetailApi(APIView):
    @extend_schema(parameters=[JOB_ID_PARAMETER], responses={
        200: PolymorphicProxySerializer(
            component_name="AnyJob", serializers=[JobSerializer, DistributedJobSerializer],
            resource_type_field_name=None,
        ),
        404: ErrorSerializer, 503: ErrorSerializer,
    })
    def get(self, request: Request, job_id: str) -> Response:
        job = job_get(checked_job_id(job_id), caller(request))
        if job is None:
            raise ApplicationError(
                f"Unknown job id {job_id!r}.", status=404, code="job_not_found",
                extra={"job": job_id},
            )
        serializer = job_serializer_class(job)
        return Response(serializer(job, context={"request": request}).data)

    @extend_schema(
        summary="Delete a finished job and its outputs (its owner, or an admin)",
        parameters=[JOB_ID_PARAMETER],
        responses={204: None, 404: ErrorSerializer, 409: ErrorSerializer, 503: ErrorSerializer},
    )
    def delete(self, request: Request, job_id: str) -> Response:
        job_delete(job_id=checked_job_id(job_id), viewer=caller(request))
        return Response(status=204)


class JobOutputApi(APIView):
    content_negotiation_class = BinaryContentNegotiation

    @extend_schema(summary="One output image of a job", parameters=[JOB_ID_PARAMETER],
                   responses={**BINARY_IMAGE, 404: ErrorSerializer})
    def get(self, request: Request, job_id: str, index: int) -> FileResponse:
        path, fmt, name = job_output(checked_job_id(job_id), index, caller(request))
        return FileResponse(path.open("rb"), content_type=CONTENT_TYPES[fmt], filename=name)


class JobThumbnailApi(APIView):
    content_negotiation_class = BinaryContentNegotiation

    @extend_schema(
        summary="The WebP preview of one output of a job",
        operation_id="jobs_thumbnails_retrieve",
        description="At most 256 px on its longest side, made from the output by whatever "
        "made the output. 404 thumbnail_not_found when the result has none.",
        parameters=[JOB_ID_PARAMETER],
        responses={(200, "image/webp"): OpenApiTypes.BINARY, 404: ErrorSerializer},
    )
    def get(self, request: Request, job_id: str, index: int) -> FileResponse:
        path = job_thumbnail(checked_job_id(job_id), index, caller(request))
        return FileResponse(path.open("rb"), content_type="image/webp")


class JobResultsZipApi(APIView):
    content_negotiation_class = BinaryContentNegotiation

    @extend_schema(
        summary="Zip of every completed output",
        operation_id="jobs_results_zip",
        description="Entries are named after the original files, with the output's "
        'extension ("holiday.png"); a repeated name becomes "holiday (2).png".',
        parameters=[JOB_ID_PARAMETER],
        responses={(200, "application/zip"): OpenApiTypes.BINARY, 404: ErrorSerializer},
    )
    def get(self, request: Request, job_id: str) -> FileResponse:
        files = job_output_files(checked_job_id(job_id), caller(request))
        # An anonymous temp file, never all in memory; FileResponse closes (and so deletes) it.
        archive = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
                for name, path in files:
                    zf.write(path, arcname=name)
        except BaseException:
            archive.close()
            raise
        archive.seek(0)
        return FileResponse(
            archive, as_attachment=True, filename=f"{job_id}-results.zip",
            content_type="application/zip",
        )


def request_id_of(request: Request) -> str | None:
    """The id of this HTTP request (RequestIdMiddleware), carried to the worker's log lines
    for its tasks."""
    return getattr(request, "request_id", None) or current_request_id()


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
            job = job_get(job_id, batch.caller)
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
        viewer = caller(request)
        cancelled = job_cancel(job_id=checked_job_id(job_id), viewer=viewer)
        job = job_get(job_id, viewer)
        return Response({"id": job_id, "cancelled": cancelled,
                         "status": job["status"] if job else "cancelled"})
