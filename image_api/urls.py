"""Routes of the API (mounted under /api/ by project/urls.py)."""

from django.urls import path

from image_api import distributed_views, pools, views
from image_api.meta.views import ApiRootApi, LivenessApi

app_name = "image_api"

urlpatterns = [
    path("", ApiRootApi.as_view(), name="root"),
    path("health/", views.HealthApi.as_view(), name="health"),
    path("health/live/", LivenessApi.as_view(), name="health-live"),
    path("filters/", views.FilterListApi.as_view(), name="filters"),
    path("images/", views.ImageListUploadApi.as_view(), name="images"),
    path("images/<str:image_id>/", views.ImageFileApi.as_view(), name="image-file"),
    path(
        "process-batch/threading/",
        views.JobCreateLocalApi.as_view(mode=pools.THREADING),
        name="process-batch-threading",
    ),
    path(
        "process-batch/multiprocessing/",
        views.JobCreateLocalApi.as_view(mode=pools.MULTIPROCESSING),
        name="process-batch-multiprocessing",
    ),
    path(
        "process-batch/distributed/",
        distributed_views.JobCreateDistributedApi.as_view(),
        name="process-batch-distributed",
    ),
    path("workers/status/", distributed_views.WorkersStatusApi.as_view(), name="workers-status"),
    path("dead-letters/", distributed_views.DeadLetterApi.as_view(), name="dead-letters"),
    path("jobs/<str:job_id>/", views.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/cancel/", distributed_views.JobCancelApi.as_view(),
         name="job-cancel"),
    path("jobs/<str:job_id>/outputs/<int:index>/", views.JobOutputApi.as_view(), name="job-output"),
    path("jobs/<str:job_id>/results.zip", views.JobResultsZipApi.as_view(), name="job-results-zip"),
]
