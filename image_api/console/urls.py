"""Routes of the console (mounted under /console/ by project/urls.py)."""

from django.urls import path

from image_api.console import views

app_name = "console"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<str:job_id>/", views.job, name="job"),
    path("dead-letters/", views.dead_letters, name="dead-letters"),
    path("workers/<str:worker_id>/", views.worker, name="worker"),
]
