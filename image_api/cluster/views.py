"""GET /api/workers/status/, /api/workers/history/, /api/workers/<id>/ and
POST /api/workers/<id>/drain/; /dashboard/ now leads to the console."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from image_api.cluster.selectors import cluster_history, worker_detail, workers_status
from image_api.cluster.serializers import (
    DrainedSerializer,
    HistorySerializer,
    WorkerDetailSerializer,
    WorkersStatusSerializer,
)
from image_api.cluster.services import worker_drain
from image_api.parsers import JSONParser
from image_api.schema import ErrorSerializer
from image_api.tenancy import caller, require_admin

WORKER_ID_PARAMETER = OpenApiParameter(
    "worker_id", str, OpenApiParameter.PATH,
    description="A worker id as listed by /api/workers/status/ (WORKER_ID).",
)


class WorkersStatusApi(APIView):
    @extend_schema(
        summary="Workers, queue figures, throughput and alerts",
        description="Cost grows with the number of workers, not of tasks.",
        responses={200: WorkersStatusSerializer, 503: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(workers_status(caller(request)))


class WorkersHistoryApi(APIView):
    @extend_schema(
        summary="Queue depth, throughput and failures over the last hour",
        description="One sample per 10-second bucket, kept in Redis for an hour (bounded).",
        responses={200: HistorySerializer, 503: ErrorSerializer},
    )
    def get(self, request: Request) -> Response:
        return Response(cluster_history())


class WorkerDetailApi(APIView):
    @extend_schema(
        summary="One worker and its recent tasks (its timeline)",
        parameters=[WORKER_ID_PARAMETER],
        responses={200: WorkerDetailSerializer, 404: ErrorSerializer, 503: ErrorSerializer},
    )
    def get(self, request: Request, worker_id: str) -> Response:
        return Response(worker_detail(worker_id, caller(request)))


class WorkerDrainApi(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        summary="Drain a worker: it finishes its task in hand, stops fetching and exits 0",
        description="Admin only. The worker sees the request with its next heartbeat; until "
        "it leaves, its state in the status is `draining`.",
        parameters=[WORKER_ID_PARAMETER],
        request=None,
        responses={202: DrainedSerializer, 401: ErrorSerializer, 403: ErrorSerializer,
                   404: ErrorSerializer, 409: ErrorSerializer, 503: ErrorSerializer},
    )
    def post(self, request: Request, worker_id: str) -> Response:
        require_admin(request, "drain workers")
        worker_drain(worker_id=worker_id)
        return Response({"worker_id": worker_id, "draining": True}, status=202)
