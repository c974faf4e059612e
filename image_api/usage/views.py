"""GET /api/usage/: what the calling tenant keeps and what bounds it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from image_api.schema import ErrorSerializer
from image_api.tenancy import caller
from image_api.usage.selectors import usage_get


class StorageUsageSerializer(serializers.Serializer):
    used_bytes = serializers.IntegerField(
        help_text="Bytes you keep: uploads, outputs and thumbnails, counted when written and "
        "given back when deleted or expired.")
    quota_bytes = serializers.IntegerField(
        allow_null=True, help_text="TENANT_STORAGE_QUOTA_MB in bytes; null: no quota.")
    available_bytes = serializers.IntegerField(
        allow_null=True, help_text="What uploads may still add; null: no quota.")
    over_quota = serializers.BooleanField(
        help_text="At or over the quota: submissions and uploads are refused (413) until you "
        "delete images or jobs. Outputs of running jobs are still written.")


class FreeSpaceSerializer(serializers.Serializer):
    min_free_bytes = serializers.IntegerField(
        allow_null=True, help_text="MIN_FREE_DISK_MB in bytes; null: no floor.")
    below_floor = serializers.BooleanField(
        help_text="The storage has less free space than the floor: uploads answer 507.")
    free_bytes = serializers.IntegerField(
        allow_null=True, help_text="Free bytes of the storage's filesystem (admins only).")


class RateLimitSerializer(serializers.Serializer):
    rate = serializers.CharField(allow_null=True, help_text="THROTTLE_RATE; null: none.")
    requests = serializers.IntegerField(allow_null=True)
    period_s = serializers.IntegerField(allow_null=True)
    burst = serializers.IntegerField(allow_null=True, help_text="THROTTLE_BURST.")


class LimitsSerializer(serializers.Serializer):
    max_upload_bytes = serializers.IntegerField()
    max_request_bytes = serializers.IntegerField()
    max_json_bytes = serializers.IntegerField()
    max_batch_images = serializers.IntegerField()
    max_image_pixels = serializers.IntegerField()
    max_jpeg_scans = serializers.IntegerField()
    max_task_cost_ms = serializers.FloatField()
    task_time_limit_s = serializers.FloatField()
    request_deadline_s = serializers.FloatField()
    tenant_max_open_tasks = serializers.IntegerField(
        help_text="Your queued + running + delayed distributed tasks at most.")


class UsageApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Usage"

        tenant = serializers.CharField(help_text="Your tenant: your API key's id, or anonymous.")
        storage = StorageUsageSerializer()
        free_space = FreeSpaceSerializer()
        rate_limit = RateLimitSerializer()
        limits = LimitsSerializer()

    @extend_schema(
        summary="Your storage usage and limits",
        operation_id="usage_retrieve",
        responses={200: OutputSerializer, 503: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(usage_get(caller(request))).data)
