"""ASGI entry point: the API as gunicorn's uvicorn workers serve it (project/gunicorn_conf.py),
behind the front door of project/asgi_middleware.py (body caps, deadlines, the cap on requests
in Django's hands, access lines)."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from project.asgi_middleware import FrontDoor

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
application = FrontDoor(
    get_asgi_application(),
    max_body_bytes=settings.API_SETTINGS.bodies.max_request_bytes,
    max_json_bytes=settings.API_SETTINGS.bodies.max_json_bytes,
    body_timeout_s=settings.REQUEST_BODY_TIMEOUT_SECONDS,
    deadline_s=settings.REQUEST_DEADLINE_SECONDS,
    max_concurrent=settings.MAX_CONCURRENT_REQUESTS,
)
