"""GET /api/callbacks/secret/: the caller's callback signing secret and how to check it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from image_api.callbacks.signing import SCHEME, tenant_secret
from image_api.tenancy import caller


class CallbackSecretApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CallbackSecret"

        tenant = serializers.CharField(help_text="Whose secret this is (the caller's key).")
        secret = serializers.CharField(help_text="The HMAC-SHA256 key of this tenant's "
                                       "callbacks. Another tenant's callbacks use another.")
        signature_header = serializers.CharField()
        timestamp_header = serializers.CharField()
        scheme = serializers.CharField(help_text="How the signature is computed.")

    @extend_schema(
        summary="The caller's callback signing secret",
        operation_id="callbacks_secret",
        description="Callbacks (`callback_url` on a batch) carry `X-Imgproc-Signature: "
        "sha256=<hex>`, the HMAC-SHA256 of `<X-Imgproc-Timestamp>.<raw body>` keyed by this "
        "secret. Check it, and refuse old timestamps, before trusting a callback.",
        responses={200: OutputSerializer},
    )
    def get(self, request: Request) -> Response:
        tenant = caller(request).tenant
        return Response(self.OutputSerializer({
            "tenant": tenant, "secret": tenant_secret(tenant),
            "signature_header": SIGNATURE_HEADER, "timestamp_header": TIMESTAMP_HEADER,
            "scheme": SCHEME,
        }).data)
