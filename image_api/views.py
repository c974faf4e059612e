"""Thin API views: parse with an input serializer, call a service or selector, render."""

from __future__ import annotations

import re
import tempfile
import zipfile
from typing import Any

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from image_api import parsers as strict_json
from image_api import pools
from image_api.errors import ApplicationError
from image_api.selectors import (
    health_report,
    image_file,
    image_list,
    job_get,
    job_output,
    job_output_files,
)
from image_api.serializers import (
    DistributedJobSerializer,
    ImageListItemSerializer,
    ImageMetaSerializer,
    JobSerializer,
    StrictCharField,
    StrictInputSerializer,
    StrictIntegerField,
    UploadField,
    job_serializer_class,
)
from image_api.services import BatchSpec, batch_prepare, image_upload_batch, job_run_local
from imaging.codecs import CONTENT_TYPES, OUTPUT_FORMATS
from imaging.filters import filter_schemas
from imaging.storage import is_image_id

# The multipart fields that may carry images, in the order their files join the batch.
FILE_FIELDS = ("files", "file", "images", "image")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")

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
    if hasattr(raw, "read"):
        raw = raw.read().decode("utf-8", errors="replace")
    try:
        options = strict_json.loads(raw)
    except strict_json.JSONTooDeep as exc:
        raise ApplicationError(f"'options': {exc}", code="json_too_deep") from None
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
        pipeline_data=options,
        image_ids=data.get("images"),
        files=files,
        output_format=data.get("output_format"),
        quality=data.get("quality"),
    )
    return batch, data


class HealthApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Health"

        status = serializers.ChoiceField(choices=["ok", "degraded", "error"])
        version = serializers.CharField()
        dependencies = serializers.DictField(
            child=serializers.DictField(),
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
            child=serializers.DictField(),
            help_text="Each filter: name, description and params (name, type, default, "
            "description, minimum/maximum/choices/nullable when set).",
        )

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer({"filters": filter_schemas()}).data)


class ImageListUploadApi(APIView):
    class UploadInputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ImageUpload"

        files = serializers.ListField(
            child=UploadField(),
            help_text="One or more images (JPEG, PNG, WebP, BMP, TIFF). "
            "The fields 'file', 'image' and 'images' are accepted too.",
        )

    class UploadOutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ImageUploadResult"

        images = ImageMetaSerializer(many=True)

    class ListOutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ImageList"

        images = ImageListItemSerializer(many=True)

    @extend_schema(
        summary="List uploaded and sample images",
        operation_id="images_list",
        responses={200: ListOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        data = self.ListOutputSerializer({"images": image_list()}, context={"request": request})
        return Response(data.data)

    @extend_schema(
        summary="Upload images (all validated before any is stored)",
        request={"multipart/form-data": UploadInputSerializer},
        responses={
            201: UploadOutputSerializer, 400: ErrorSerializer, 413: ErrorSerializer,
            415: ErrorSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        images = image_upload_batch(files=request_files(request))
        return Response(self.UploadOutputSerializer({"images": images}).data, status=201)


class ImageFileApi(APIView):
    content_negotiation_class = BinaryContentNegotiation

    @extend_schema(
        summary="The stored image's bytes",
        operation_id="images_file_retrieve",
        parameters=[IMAGE_ID_PARAMETER],
        responses={**BINARY_IMAGE, 404: ErrorSerializer},
    )
    def get(self, request: Request, image_id: str) -> FileResponse:
        path, meta = image_file(checked_image_id(image_id))
        return FileResponse(
            path.open("rb"), content_type=CONTENT_TYPES[meta["format"]], filename=path.name
        )


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
        return Response(JobSerializer(job_get(job_id), context={"request": request}).data)


class JobDetailApi(APIView):
    @extend_schema(parameters=[JOB_ID_PARAMETER], responses={
        200: PolymorphicProxySerializer(
            component_name="AnyJob", serializers=[JobSerializer, DistributedJobSerializer],
            resource_type_field_name=None,
        ),
        404: ErrorSerializer, 503: ErrorSerializer,
    })
    def get(self, request: Request, job_id: str) -> Response:
        job = job_get(checked_job_id(job_id))
        if job is None:
            raise ApplicationError(
                f"Unknown job id {job_id!r}.", status=404, code="job_not_found",
                extra={"job": job_id},
            )
        serializer = job_serializer_class(job)
        return Response(serializer(job, context={"request": request}).data)


class JobOutputApi(APIView):
    content_negotiation_class = BinaryContentNegotiation

    @extend_schema(summary="One output image of a job", parameters=[JOB_ID_PARAMETER],
                   responses={**BINARY_IMAGE, 404: ErrorSerializer})
    def get(self, request: Request, job_id: str, index: int) -> FileResponse:
        path, fmt, name = job_output(checked_job_id(job_id), index)
        return FileResponse(path.open("rb"), content_type=CONTENT_TYPES[fmt], filename=name)


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
        files = job_output_files(checked_job_id(job_id))
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
