"""Every environment variable of the service, declared once.

Each process builds one frozen settings object at startup and passes it on; nothing else
reads the environment:

- the API: ``project/settings.py`` builds :class:`ApiSettings` and assigns Django's names
  from it; gunicorn's config (``project/gunicorn_conf.py``) reads :class:`LogSettings` for
  its own lines;
- a worker: ``python -m workers`` builds :class:`WorkerSettings` (its flags override);
- ``make run``: the ``runcluster`` command builds :class:`ClusterSettings` for
  ``devcluster``, which hands the children their environment explicitly.

The queue settings are read by the API and the workers alike, into
``distributed.config.QueueConfig``, and both sides must see the same values. ``distributed``
stays free of environment parsing: the mapping of its fields to variables is
:data:`QUEUE_VARS`, in common/queue_settings.py.

docs/settings.md is generated from these declarations (``make docs``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from common.body_settings import BodyLimits
from common.env import Var, load, nested, setting
from common.queue_settings import QUEUE_VARS, queue_config_from_env  # noqa: F401 (re-exported)
from common.storage_settings import MIN_FREE_DISK, STORAGE_VARS, StorageLimits
from common.throttle_settings import ThrottleSettings
from distributed.config import QueueConfig

BASE_DIR = Path(__file__).resolve().parent.parent

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "logfmt"]
ColourProfile = Literal["keep", "srgb"]

# A fixed key is only acceptable for local use; refusing it outside development is a later
# change (ApiSettings.uses_builtin_secret_key tells which one is in use).
INSECURE_SECRET_KEY = "insecure-local-only-key-set-DJANGO_SECRET_KEY"


def cpu_count() -> int:
    return os.cpu_count() or 1


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _media_under_var_dir(values: Mapping[str, Any]) -> Path:
    return Path(values["var_dir"]) / "media"


# --- shared by several processes ---------------------------------------------------------

VAR_DIR = Var(
    "VAR_DIR", "local state: SQLite database, media, embedded Redis, logs",
    unit="path", default_doc="`var/` beside `manage.py`", also_read_by="Makefile",
)
MEDIA_ROOT = Var("MEDIA_ROOT", "shared image storage (uploads, samples, outputs); the same "
                 "volume for the API and workers", unit="path", default_doc="`$VAR_DIR/media`")
MAX_IMAGE_PIXELS = Var(
    "MAX_IMAGE_PIXELS", "largest image (width x height), checked before decoding",
    unit="pixels", minimum=1,
)
MAX_JPEG_SCANS = Var(
    "MAX_JPEG_SCANS", "most scans in a progressive JPEG (each costs a decode pass); more is a "
    "400 too_many_scans, checked before decoding", unit="scans", minimum=1,
)
MAX_TASK_COST_MS = Var(
    "MAX_TASK_COST_MS", "most estimated CPU time of one image's pipeline (decode, steps, "
    "encode; imaging/costs.py); more is a 400 pipeline_too_expensive at submission",
    unit="milliseconds", minimum=1,
)
TASK_TIME_LIMIT = Var(
    "TASK_TIME_LIMIT_SECONDS", "wall time of one image; a worker kills the task's process "
    "past it (dead letter time_limit_exceeded), the local modes stop between steps",
    unit="seconds", minimum=0.1,
)
COLOUR_PROFILE = Var(
    "COLOUR_PROFILE", "`keep`: outputs carry the input's ICC profile; `srgb`: pixels are "
    "converted to sRGB and no profile is written",
)
LOG_LEVEL = Var("LOG_LEVEL", "least severe level logged")
LOG_FORMAT = Var(
    "LOG_FORMAT", "log lines as JSON objects or as logfmt `key=value` pairs (same fields)",
)
SHUTDOWN_GRACE = Var("SHUTDOWN_GRACE_SECONDS", "time a worker gets to finish its task in "
                     "hand on SIGTERM", unit="seconds", minimum=0)


@dataclass(frozen=True)
class LogSettings:
    """What gunicorn's master needs to format its own lines like everyone else's."""

    log_level: LogLevel = setting(LOG_LEVEL, "INFO")
    log_format: LogFormat = setting(LOG_FORMAT, "json")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> LogSettings:
        return load(cls, env, **overrides)


@dataclass(frozen=True)
class ApiSettings:
    """The API process (Django under gunicorn, or manage.py)."""

    debug: bool = setting(Var("DJANGO_DEBUG", "Django debug mode; never in production"), False)
    secret_key: str = setting(
        Var("DJANGO_SECRET_KEY", "Django's signing key: set your own anywhere but a laptop",
            default_doc="a fixed, public, local-only key"),
        INSECURE_SECRET_KEY,
    )
    allowed_hosts: tuple[str, ...] = setting(
        Var("DJANGO_ALLOWED_HOSTS", "host names the API answers to"),
        ("localhost", "127.0.0.1", "[::1]", "testserver"),
    )
    database_url: str = setting(
        Var("DATABASE_URL", "database, e.g. `postgres://user:pass@db:5432/imgproc` "
            "(required with more than one API pod)",
            unit="URL", default_doc="SQLite file `$VAR_DIR/db.sqlite3`"),
        "",
    )
    var_dir: Path = setting(VAR_DIR, BASE_DIR / "var")
    media_root: Path = setting(MEDIA_ROOT, BASE_DIR / "var" / "media", derive=_media_under_var_dir)
    auth_required: bool = setting(
        Var("AUTH_REQUIRED", "every request but the health probes needs an API key "
            "(`Authorization: Bearer <key>` or `X-API-Key: <key>`; `manage.py createapikey`). "
            "Off, a request without a key is the one anonymous tenant, with admin rights",
            default_doc="off (`make run`); on in docker-compose.yml and deploy/k8s"),
        False,
    )
    allow_anonymous: bool = setting(
        Var("ALLOW_ANONYMOUS", "let the API start bound to a non-loopback address with "
            "AUTH_REQUIRED off; without it the server refuses to start (like Redis's "
            "protected mode)"),
        False,
    )
    throttle: ThrottleSettings = nested(ThrottleSettings)
    retention_sweep_s: float = setting(
        Var("RETENTION_SWEEP_SECONDS", "time between two retention sweeps of an API process "
            "(one process at a time sweeps); 0 turns the janitor off", unit="seconds",
            minimum=0),
        300.0,
    )
    serve_static: bool = setting(
        Var("SERVE_STATIC", "serve the docs' and browsable API's assets from Django itself "
            "(turn off when a proxy serves them)"),
        True,
    )
    max_upload_bytes: int = setting(
        Var("MAX_UPLOAD_BYTES", "largest upload", unit="bytes", minimum=1), 25 * 1024 * 1024
    )
    bodies: BodyLimits = nested(BodyLimits)
    request_deadline_s: float = setting(
        Var("REQUEST_DEADLINE_SECONDS", "a request not answered within this time gets a 504 "
            "(the local modes refuse a batch whose estimated run would not fit in half of it)",
            unit="seconds", minimum=1),
        300.0,
    )
    max_concurrent_requests: int = setting(
        Var("MAX_CONCURRENT_REQUESTS", "requests one API process hands to Django at once (each "
            "runs in a thread of its own); more wait, holding no thread, until one ends or "
            "their deadline passes. Health probes and event streams do not count; 0: no cap",
            unit="requests", minimum=0),
        32,
    )
    request_body_timeout_s: float = setting(
        Var("REQUEST_BODY_TIMEOUT_SECONDS", "a request whose body has not fully arrived this "
            "long after it began gets a 408 (slow uploads cannot hold the server)",
            unit="seconds", minimum=1),
        60.0,
    )
    max_image_pixels: int = setting(MAX_IMAGE_PIXELS, 40_000_000)
    max_jpeg_scans: int = setting(MAX_JPEG_SCANS, 100)
    max_task_cost_ms: float = setting(MAX_TASK_COST_MS, 20_000.0)
    task_time_limit_s: float = setting(TASK_TIME_LIMIT, 60.0)
    colour_profile: ColourProfile = setting(COLOUR_PROFILE, "keep")
    local_max_concurrent_images: int = setting(
        Var("LOCAL_MAX_CONCURRENT_IMAGES", "decoded images the threading mode holds at once "
            "in the API process (its memory budget: a few frames each)", unit="images",
            minimum=1),
        2,
    )
    max_batch_images: int = setting(
        Var("MAX_BATCH_IMAGES", "most images in one batch", unit="images", minimum=1), 500
    )
    thread_pool_size: int = setting(
        Var("THREAD_POOL_SIZE", "threads of the threading mode", unit="threads", minimum=1,
            default_doc="CPU count"),
        factory=cpu_count,
    )
    process_pool_size: int = setting(
        Var("PROCESS_POOL_SIZE", "processes of the multiprocessing mode", unit="processes",
            minimum=1, default_doc="CPU count"),
        factory=cpu_count,
    )
    sse_poll_s: float = setting(
        Var("SSE_POLL_SECONDS", "how often a job's event stream reads the job",
            unit="seconds", minimum=0.01),
        0.5,
    )
    sse_keepalive_s: float = setting(
        Var("SSE_KEEPALIVE_SECONDS", "a `: keepalive` comment on an event stream this long "
            "without an event", unit="seconds", minimum=0.01),
        15.0,
    )
    sse_max_s: float = setting(
        Var("SSE_MAX_SECONDS", "longest life of one event stream (the client reconnects)",
            unit="seconds", minimum=0.01),
        600.0,
    )
    sse_max_streams: int = setting(
        Var("SSE_MAX_STREAMS", "event streams one API process holds open at once; more "
            "answer 503 too_many_streams", unit="streams", minimum=1),
        1000,
    )
    callback_secret: str = setting(
        Var("CALLBACK_SECRET", "the key each tenant's callback signing secret is derived from "
            "(HMAC-SHA256 of the tenant id); a tenant reads its own secret at "
            "`GET /api/callbacks/secret/`. Changing it changes every tenant's secret",
            default_doc="derived from DJANGO_SECRET_KEY"),
        "",
    )
    callback_allow_private: bool = setting(
        Var("CALLBACK_ALLOW_PRIVATE", "accept `callback_url`s whose host resolves to a "
            "private or loopback address (off: such URLs are refused at submission and at "
            "delivery, so callbacks cannot reach the service's own network). Link-local "
            "(cloud metadata), multicast and reserved addresses are refused either way"),
        False,
    )
    callback_max_attempts: int = setting(
        Var("CALLBACK_MAX_ATTEMPTS", "delivery attempts of one job-finished callback before "
            "it is given up (state `failed`)", unit="attempts", minimum=1),
        8,
    )
    callback_retry_base_s: float = setting(
        Var("CALLBACK_RETRY_BASE_SECONDS", "wait before the first retry of a callback; it "
            "doubles with each retry (with jitter) up to CALLBACK_RETRY_MAX_SECONDS",
            unit="seconds", minimum=0.01),
        5.0,
    )
    callback_retry_max_s: float = setting(
        Var("CALLBACK_RETRY_MAX_SECONDS", "longest wait between two callback attempts",
            unit="seconds", minimum=0.01),
        600.0,
    )
    callback_timeout_s: float = setting(
        Var("CALLBACK_TIMEOUT_SECONDS", "time one callback attempt may take in all (connect, "
            "send, answer); a receiver slower than this is a failed attempt",
            unit="seconds", minimum=0.1),
        5.0,
    )
    callback_poll_s: float = setting(
        Var("CALLBACK_POLL_SECONDS", "how often an API process looks for due callbacks (a "
            "local job's callback goes at once); 0: this process sends none", unit="seconds",
            minimum=0),
        1.0,
    )
    metrics_token: str = setting(
        Var("METRICS_TOKEN", "a read-only bearer token for `GET /metrics` (Prometheus' "
            "`authorization: credentials`); set, a scrape needs it or an admin key. Unset: "
            "`/metrics` needs an admin key when AUTH_REQUIRED is on, nothing when it is off",
            default_doc="unset"),
        "",
    )
    prometheus_multiproc_dir: str = setting(
        Var("PROMETHEUS_MULTIPROC_DIR", "where each API process writes its HTTP metrics for "
            "`/metrics` to add up (prometheus-client's multiprocess mode, read by the library "
            "itself); one empty directory per API instance, emptied at its start",
            unit="path", also_read_by="docker/entrypoint.sh, prometheus-client",
            default_doc="unset: one process's metrics (set by docker/entrypoint.sh and "
            "devcluster)"),
        "",
    )
    log_level: LogLevel = setting(LOG_LEVEL, "INFO")
    log_format: LogFormat = setting(LOG_FORMAT, "json")
    queue: QueueConfig = nested(QueueConfig, QUEUE_VARS)
    storage: StorageLimits = nested(StorageLimits, STORAGE_VARS)

    @property
    def uses_builtin_secret_key(self) -> bool:
        return self.secret_key == INSECURE_SECRET_KEY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        return load(cls, env)


@dataclass(frozen=True)
class WorkerSettings:
    """A worker process (``python -m workers``)."""

    worker_id: str = setting(
        Var("WORKER_ID", "id in the worker registry; keep it stable across restarts",
            default_doc="`<hostname>-<pid>`"),
        factory=default_worker_id,
    )
    concurrency: int = setting(
        Var("WORKER_CONCURRENCY", "tasks a worker runs at once (threads)", unit="tasks",
            minimum=1),
        1,
    )
    prefetch: int = setting(
        Var("WORKER_PREFETCH", "most tasks taken per fetch: 1 at a time while tasks take "
            "≥ 10 ms, doubling up to this while they are quicker", unit="tasks", minimum=1),
        32,
    )
    var_dir: Path = setting(VAR_DIR, BASE_DIR / "var")
    media_root: str = setting(
        MEDIA_ROOT, str(BASE_DIR / "var" / "media"),
        derive=lambda values: str(_media_under_var_dir(values)),
    )
    max_image_pixels: int = setting(MAX_IMAGE_PIXELS, 40_000_000)
    max_jpeg_scans: int = setting(MAX_JPEG_SCANS, 100)
    max_task_cost_ms: float = setting(MAX_TASK_COST_MS, 20_000.0)
    task_time_limit_s: float = setting(TASK_TIME_LIMIT, 60.0)
    colour_profile: ColourProfile = setting(COLOUR_PROFILE, "keep")
    memory_limit_mb: int = setting(
        Var("WORKER_MEMORY_LIMIT_MB", "memory a task may allocate: each task runs in a child "
            "process whose address space the kernel caps at its start-up size plus this "
            "(RLIMIT_AS); 0 = no cap. Past it: dead letter memory_limit_exceeded",
            unit="MiB", minimum=0),
        1536,
    )
    shutdown_grace_s: float = setting(SHUTDOWN_GRACE, 25.0)
    min_free_disk_mb: int = setting(MIN_FREE_DISK, StorageLimits.min_free_disk_mb)
    health_file: str = setting(
        Var("WORKER_HEALTH_FILE", "file touched after each successful heartbeat; "
            "`python -m workers healthcheck` reads its age", unit="path"),
        "",
    )
    log_level: LogLevel = setting(LOG_LEVEL, "INFO")
    log_format: LogFormat = setting(LOG_FORMAT, "json")
    queue: QueueConfig = nested(QueueConfig, QUEUE_VARS)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> WorkerSettings:
        """From ``env`` (default: the process environment); ``overrides`` are the command
        line's flags (None: not given)."""
        return load(cls, env, **overrides)


@dataclass(frozen=True)
class ClusterSettings:
    """``make run`` (``manage.py runcluster``): the local cluster under supervisord."""

    host: str = setting(Var("HOST", "address the API listens on"), "127.0.0.1")
    port: int = setting(
        Var("PORT", "port the API listens on", minimum=1, also_read_by="Makefile"), 8000
    )
    workers: int = setting(
        Var("WORKERS", "workers started", unit="workers", minimum=0, also_read_by="Makefile"), 3
    )
    embedded_redis_port: int = setting(
        Var("EMBEDDED_REDIS_PORT", "port of the embedded Redis (when `REDIS_URL` is unset)",
            minimum=0, default_doc="a free port"),
        0,
    )
    gunicorn_workers: int = setting(
        Var("GUNICORN_WORKERS", "gunicorn processes of the API", unit="processes", minimum=1,
            also_read_by="docker/entrypoint.sh"),
        2,
    )
    gunicorn_threads: int = setting(
        Var("GUNICORN_THREADS", "threads per gunicorn process", unit="threads", minimum=1,
            also_read_by="docker/entrypoint.sh"),
        4,
    )
    shutdown_grace_s: float = setting(SHUTDOWN_GRACE, 25.0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ClusterSettings:
        return load(cls, env, **overrides)


# Who reads what, for the settings table: (process, its settings class).
PROCESSES: tuple[tuple[str, type], ...] = (
    ("API", ApiSettings),
    ("API", LogSettings),
    ("workers", WorkerSettings),
    ("make run", ClusterSettings),
)
