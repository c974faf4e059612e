"""Django settings, built from one typed object: ``ApiSettings.from_env()`` (common/settings.py
declares every variable; docs/settings.md lists them). Nothing here reads the environment.

Defaults are safe for a laptop: SQLite under ./var, media under ./var/media, DEBUG off,
and no Redis unless REDIS_URL is set (the distributed mode then answers 503).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from common import __version__
from common.logs import logging_config
from common.settings import ApiSettings

BASE_DIR = Path(__file__).resolve().parent.parent
# Built once per process; a variable that does not parse stops the process here, naming it.
API_SETTINGS = ApiSettings.from_env()
VAR_DIR = API_SETTINGS.var_dir

DEBUG = API_SETTINGS.debug
# The built-in key is only acceptable for local use; production sets DJANGO_SECRET_KEY.
SECRET_KEY = API_SETTINGS.secret_key
ALLOWED_HOSTS = list(API_SETTINGS.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "image_api",
]

MIDDLEWARE = [
    # Outermost: the HTTP latency histogram of /metrics times everything Django answers.
    "image_api.metrics.latency.HttpMetricsMiddleware",
    # Every response, even one answered by a later middleware, carries X-Request-ID.
    "image_api.middleware.RequestIdMiddleware",
    # Before anything reads a body: state changes from another origin are refused (403).
    "image_api.middleware.CrossOriginGuardMiddleware",
    # A body in a charset that is not text, or whose declared size is over its cap
    # (MAX_REQUEST_BYTES for uploads, MAX_JSON_BYTES for anything else), is refused before
    # it is read.
    "image_api.middleware.BodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware: /api/ paths work without their trailing slash (no 301 for POSTs).
    "image_api.middleware.ApiTrailingSlashMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if not API_SETTINGS.database_url:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives there
DATABASES = {
    "default": dj_database_url.parse(
        API_SETTINGS.database_url or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=60,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Serve static files (Swagger UI/ReDoc sidecar assets, browsable API, admin) from Django itself,
# so /api/docs/ works offline under gunicorn with DEBUG off. Set to 0 when a proxy serves them.
SERVE_STATIC = API_SETTINGS.serve_static

# Shared image storage (uploads, samples, outputs); the workers read MEDIA_ROOT too.
MEDIA_ROOT = API_SETTINGS.media_root
# What one tenant may keep there (0: no quota) and the free space it keeps (0: no floor),
# in MiB (image_api/usage).
TENANT_STORAGE_QUOTA_MB = API_SETTINGS.storage.tenant_quota_mb
MIN_FREE_DISK_MB = API_SETTINGS.storage.min_free_disk_mb

# Input limits.
MAX_UPLOAD_BYTES = API_SETTINGS.max_upload_bytes
MAX_REQUEST_BYTES = API_SETTINGS.bodies.max_request_bytes
REQUEST_DEADLINE_SECONDS = API_SETTINGS.request_deadline_s
REQUEST_BODY_TIMEOUT_SECONDS = API_SETTINGS.request_body_timeout_s
MAX_CONCURRENT_REQUESTS = API_SETTINGS.max_concurrent_requests
MAX_IMAGE_PIXELS = API_SETTINGS.max_image_pixels
MAX_BATCH_IMAGES = API_SETTINGS.max_batch_images
MAX_JPEG_SCANS = API_SETTINGS.max_jpeg_scans
MAX_TASK_COST_MS = API_SETTINGS.max_task_cost_ms
TASK_TIME_LIMIT_SECONDS = API_SETTINGS.task_time_limit_s
COLOUR_PROFILE = API_SETTINGS.colour_profile
LOCAL_MAX_CONCURRENT_IMAGES = API_SETTINGS.local_max_concurrent_images
# What Django holds in memory of a body that is not a file: the JSON cap (the multipart
# `options` field; a JSON body's own cap is applied by image_api/parsers.py), plus room for
# the field names.
DATA_UPLOAD_MAX_MEMORY_SIZE = API_SETTINGS.bodies.max_json_bytes + 64 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None
# A batch may upload up to MAX_BATCH_IMAGES files in one multipart request (Django's default: 100).
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_BATCH_IMAGES

# In-process execution modes.
THREAD_POOL_SIZE = API_SETTINGS.thread_pool_size
PROCESS_POOL_SIZE = API_SETTINGS.process_pool_size

# Job event streams (image_api/jobs/events.py).
SSE_POLL_SECONDS = API_SETTINGS.sse_poll_s
SSE_KEEPALIVE_SECONDS = API_SETTINGS.sse_keepalive_s
SSE_MAX_SECONDS = API_SETTINGS.sse_max_s
SSE_MAX_STREAMS = API_SETTINGS.sse_max_streams

# Distributed mode. REDIS_URL unset means "no Redis": the distributed endpoints answer 503.
# The same variables configure the workers (common/settings.py, QUEUE_VARS).
DISTRIBUTED = API_SETTINGS.queue
REDIS_URL = DISTRIBUTED.redis_url

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "image_api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "image_api.parsers.JSONParser",  # strict JSON, nesting depth bounded
        "rest_framework.parsers.MultiPartParser",  # uploads; never url-encoded forms
    ],
    # API keys (image_api/auth.py): request.auth is the caller's key; AUTH_REQUIRED decides
    # whether a request may come without one. Views that must stay open (health) say so.
    "DEFAULT_AUTHENTICATION_CLASSES": ["image_api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["image_api.auth.ApiKeyRequired"],
    "DEFAULT_THROTTLE_CLASSES": ["image_api.throttle.KeyRateThrottle"],
    "UNAUTHENTICATED_USER": None,
}

# Retention (image_api/retention.py): a janitor thread per API process deletes what is older.
RETENTION_DAYS = DISTRIBUTED.retention_days  # one retention for Redis records and files
RETENTION_SWEEP_SECONDS = API_SETTINGS.retention_sweep_s

# Job-finished callbacks (image_api/callbacks): signed POSTs with retries, from every API
# process's sender thread.
CALLBACK_SECRET = API_SETTINGS.callback_secret or API_SETTINGS.secret_key
CALLBACK_ALLOW_PRIVATE = API_SETTINGS.callback_allow_private
CALLBACK_MAX_ATTEMPTS = API_SETTINGS.callback_max_attempts
CALLBACK_RETRY_BASE_SECONDS = API_SETTINGS.callback_retry_base_s
CALLBACK_RETRY_MAX_SECONDS = API_SETTINGS.callback_retry_max_s
CALLBACK_TIMEOUT_SECONDS = API_SETTINGS.callback_timeout_s
CALLBACK_POLL_SECONDS = API_SETTINGS.callback_poll_s

# API keys and tenants (image_api/auth.py, image_api/tenancy.py).
AUTH_REQUIRED = API_SETTINGS.auth_required
METRICS_TOKEN = API_SETTINGS.metrics_token
PROMETHEUS_MULTIPROC_DIR = API_SETTINGS.prometheus_multiproc_dir
ALLOW_ANONYMOUS = API_SETTINGS.allow_anonymous
# The per-key rate limit (image_api/throttle.py): in Redis when REDIS_URL is set, else per
# process.
THROTTLE_RATE = API_SETTINGS.throttle.rate
THROTTLE_BURST = API_SETTINGS.throttle.burst

# Nothing uses Django's cache (the rate limit has its own store): Django's default, in memory.

SPECTACULAR_SETTINGS = {
    "TITLE": "Image processing service",
    "DESCRIPTION": "Batches of images through a filter pipeline: threading, multiprocessing "
    "or distributed across Redis-backed workers.",
    "VERSION": __version__,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
}

# One structured line per event, like gunicorn's and the workers' lines (common/logs.py).
LOG_LEVEL = API_SETTINGS.log_level
LOG_FORMAT = API_SETTINGS.log_format
LOGGING = logging_config(
    LOG_LEVEL,
    LOG_FORMAT,
    loggers={
        "django": {"level": "WARNING"},
        # runserver's request lines: through the same handler instead of Django's own.
        "django.server": {"level": "INFO", "handlers": [], "propagate": True},
    },
)
