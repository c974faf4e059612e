"""Image endpoints: upload and list, one image's bytes."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from image_api.images.selectors import image_file, image_list
from image_api.images.serializers import ImageListItemSerializer, ImageMetaSerializer
from image_api.images.services import image_delete, image_upload_batch
from image_api.parsing import (
    PageQuerySerializer,
    UploadField,
    checked_image_id,
    parse_page_query,
    request_files,
)
from image_api.schema import (
    BINARY_IMAGE,
    IMAGE_ID_PARAMETER,
    BinaryContentNegotiation,
    ErrorSerializer,
)
from image_api.tenancy import caller, tenant_of
from imaging.codecs import CONTENT_TYPES


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

        total = serializers.IntegerField(help_text="Uploads and samples in all.")
        offset = serializers.IntegerField()
        limit = serializers.IntegerField()
        images = ImageListItemSerializer(many=True)

    class QuerySerializer(PageQuerySerializer):
        class Meta:
            ref_name = "ImageListQuery"

    @extend_schema(
        summary="List uploaded images (newest first), then the samples",
        operation_id="images_list",
        parameters=[QuerySerializer],
        responses={200: ListOutputSerializer, 400: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        query = parse_page_query(request, self.QuerySerializer)
        images = image_list(caller(request))
        page = images[query["offset"]:query["offset"] + query["limit"]]
        data = self.ListOutputSerializer(
            {"total": len(images), **query, "images": page}, context={"request": request})
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
        images = image_upload_batch(files=request_files(request), owner=tenant_of(request))
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
        path, meta = image_file(checked_image_id(image_id), caller(request))
        return FileResponse(
            path.open("rb"), content_type=CONTENT_TYPES[meta["format"]], filename=path.name
        )

    @extend_schema(
        summary="Delete an upload (its owner, or an admin)",
        operation_id="images_destroy",
        parameters=[IMAGE_ID_PARAMETER],
        responses={204: None, 404: ErrorSerializer, 409: ErrorSerializer},
    )
    def delete(self, request: Request, image_id: str) -> Response:
        image_delete(image_id=checked_image_id(image_id), viewer=caller(request))
        return Response(status=204)
