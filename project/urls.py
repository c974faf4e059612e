"""URL routing: the API under /api/, its schema and docs, the console and the admin."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from image_api.metrics.views import metrics
from image_api.static_files import serve_static

urlpatterns = [
    path("api/", include("image_api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("console/", include("image_api.console.urls")),
    # The status page of earlier versions is the console's overview now.
    path("dashboard/", RedirectView.as_view(pattern_name="console:overview", permanent=False),
         name="dashboard"),
    # Prometheus' default path (no trailing slash: scrape configs name it as is).
    path("metrics", metrics, name="metrics"),
    path("", RedirectView.as_view(pattern_name="console:overview", permanent=False)),
    path("admin/", admin.site.urls),
]

if settings.SERVE_STATIC:
    # Swagger UI / ReDoc (sidecar), the browsable API and the admin need their static files
    # even under gunicorn with DEBUG off; the files come from the installed apps (finders).
    # A path out of them is a 400 logged at info, rate-limited (image_api/static_files.py).
    urlpatterns += [
        re_path(rf"^{settings.STATIC_URL.lstrip('/')}(?P<path>.*)$", serve_static),
    ]

# JSON error bodies for /api/ paths (Django's HTML pages elsewhere).
handler400 = "image_api.errors.json_handler400"
handler403 = "image_api.errors.json_handler403"
handler404 = "image_api.errors.json_handler404"
handler500 = "image_api.errors.json_handler500"
