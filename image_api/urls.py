"""Routes of the API (mounted under /api/ by project/urls.py)."""

from django.urls import path

from image_api.callbacks.views import CallbackSecretApi
from image_api.cluster.views import (
    WorkerDetailApi,
    WorkerDrainApi,
    WorkersHistoryApi,
    WorkersStatusApi,
)
from image_api.dead_letters.views import DeadLetterApi
from image_api.images.views import ImageFileApi, ImageListUploadApi
from image_api.jobs import pools
from image_api.jobs.events import job_events
from image_api.jobs.views import (
    JobCancelApi,
    JobCreateDistributedApi,
    JobCreateLocalApi,
    JobDetailApi,
    JobListApi,
    JobOutputApi,
    JobResultsZipApi,
    JobThumbnailApi,
)
from image_api.meta.views import ApiRootApi, FilterListApi, HealthApi, LivenessApi
from image_api.usage.views import UsageApi

app_name = "image_api"

urlpatterns = [
    path("", ApiRootApi.as_view(), name="root"),
    path("health/", HealthApi.as_view(), name="health"),
    path("health/live/", LivenessApi.as_view(), name="health-live"),
    path("filters/", FilterListApi.as_view(), name="filters"),
    path("callbacks/secret/", CallbackSecretApi.as_view(), name="callbacks-secret"),
    path("usage/", UsageApi.as_view(), name="usage"),
    path("images/", ImageListUploadApi.as_view(), name="images"),
    path("images/<str:image_id>/", ImageFileApi.as_view(), name="image-file"),
    path(
        "process-batch/threading/",
        JobCreateLocalApi.as_view(mode=pools.THREADING),
        name="process-batch-threading",
    ),
    path(
        "process-batch/multiprocessing/",
        JobCreateLocalApi.as_view(mode=pools.MULTIPROCESSING),
        name="process-batch-multiprocessing",
    ),
    path(
        "process-batch/distributed/",
        JobCreateDistributedApi.as_view(),
        name="process-batch-distributed",
    ),
    path("workers/status/", WorkersStatusApi.as_view(), name="workers-status"),
    path("workers/history/", WorkersHistoryApi.as_view(), name="workers-history"),
    path("workers/<str:worker_id>/", WorkerDetailApi.as_view(), name="worker-detail"),
    path("workers/<str:worker_id>/drain/", WorkerDrainApi.as_view(), name="worker-drain"),
    path("dead-letters/", DeadLetterApi.as_view(), name="dead-letters"),
    path("jobs/", JobListApi.as_view(), name="jobs"),
    path("jobs/<str:job_id>/", JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/events/", job_events, name="job-events"),
    path("jobs/<str:job_id>/cancel/", JobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/outputs/<int:index>/", JobOutputApi.as_view(), name="job-output"),
    path("jobs/<str:job_id>/thumbnails/<int:index>/", JobThumbnailApi.as_view(),
         name="job-thumbnail"),
    path("jobs/<str:job_id>/results.zip", JobResultsZipApi.as_view(), name="job-results-zip"),
]
