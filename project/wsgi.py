"""WSGI entry point (gunicorn project.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = get_wsgi_application()
# Import every view (and so NumPy, OpenCV, DRF) now rather than on the first request: with
# gunicorn's preload_app this happens once in the master, and a worker's first request (often
# a readiness probe with a 3 s timeout) is as quick as the next.
get_resolver().url_patterns  # noqa: B018
