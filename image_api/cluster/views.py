"""GET /api/workers/status/ and the /dashboard/ page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from image_api.cluster.selectors import workers_status
from image_api.cluster.serializers import WorkersStatusSerializer
from image_api.schema import ErrorSerializer
from image_api.tenancy import caller


class WorkersStatusApi(APIView):
    @extend_schema(
        summary="Workers, queue figures, throughput and alerts",
        description="Cost grows with the number of workers, not of tasks.",
        responses={200: WorkersStatusSerializer, 503: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(workers_status(caller(request)))


def dashboard(request: HttpRequest) -> HttpResponse:
    """GET /dashboard/: a live HTML view of /api/workers/status/ (no build step, no CDN)."""
    return render(request, "image_api/dashboard.html",
                  {"status_url": reverse("image_api:workers-status")})
