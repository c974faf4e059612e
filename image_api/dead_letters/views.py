"""GET /api/dead-letters/ (a page) and POST (re-queue or discard)."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import (
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from image_api.dead_letters.selectors import dead_letters_list
from image_api.dead_letters.services import dead_letters_act
from image_api.errors import ApplicationError
from image_api.parsers import JSONParser
from image_api.parsing import StrictBooleanField, StrictCharField, StrictInputSerializer
from image_api.schema import TASK_ID_PATTERN, ErrorSerializer
from image_api.tenancy import caller, require_admin

# A dead-letter page starts at most this far in (Redis sorted sets hold at most 2^32 - 1).
MAX_DEAD_LETTER_OFFSET = 2**32


class DeadLetterErrorSerializer(serializers.Serializer):
    kind = serializers.CharField()
    message = serializers.CharField()
    attempt = serializers.IntegerField(required=False)


class DeadLetterSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    job_id = serializers.CharField()
    index = serializers.IntegerField(allow_null=True)
    image = serializers.CharField(allow_null=True)
    attempts = serializers.IntegerField(allow_null=True)
    error = DeadLetterErrorSerializer(allow_null=True)
    worker = serializers.CharField(allow_null=True)
    dead_at = serializers.DateTimeField()


class DeadLetterListSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    offset = serializers.IntegerField()
    limit = serializers.IntegerField()
    items = DeadLetterSerializer(many=True)


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
        responses={200: DeadLetterListSerializer, 400: ErrorSerializer, 503: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        page = self.PageSerializer(data=request.query_params)
        if not page.is_valid():
            raise ApplicationError(
                f"Bad pagination: offset must be 0 to {MAX_DEAD_LETTER_OFFSET}, limit 1 to 500 "
                f"({'; '.join(f'{k}: {v[0]}' for k, v in page.errors.items())})",
                code="invalid_pagination", extra={"fields": page.errors},
            )
        return Response(dead_letters_list(viewer=caller(request), **page.validated_data))

    @extend_schema(
        summary="Re-queue or discard dead letters",
        request=ActionSerializer,
        responses={200: inline_serializer(name="DeadLetterActionResult", fields={
            "action": serializers.CharField(), "changed": serializers.IntegerField()}),
            400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer,
            503: ErrorSerializer},
    )
    def post(self, request: Request) -> Response:
        require_admin(request, "requeue or discard dead letters")
        serializer = self.ActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        changed = dead_letters_act(
            action=data["action"], task_ids=None if data["all"] else data["task_ids"]
        )
        return Response({"action": data["action"], "changed": changed})
