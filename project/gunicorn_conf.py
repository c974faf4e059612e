"""gunicorn's configuration for the API: uvicorn workers, and its lines in the service's one
log format.

    gunicorn project.asgi:application -c python:project.gunicorn_conf --bind ... --workers ...

Each gunicorn process runs an event loop (uvicorn, project/uvicorn_worker.py) in front of
Django's ASGI handler: slow clients cost a socket, not a thread, and each request's view runs
in a thread of its own. Why, and the figures: docs/operations.md ("Serving").

gunicorn's and uvicorn's own lines (startup, worker boots, errors) and one access line per
request (``event: http.access`` with method, path, status, duration_ms, bytes, remote_addr and
the request_id the API answered with; project/asgi_middleware.py) go through common/logs.py's
formatter, to stderr, like Django's lines and the workers'. Process counts and the bind
address stay on the command line (docker/entrypoint.sh, devcluster/supervisor.py).

gunicorn applies every module-level name it knows as a setting: keep other names private.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from common.logs import logging_config
from common.settings import ApiSettings, LogSettings

_log = LogSettings.from_env()
_metrics_dir = ApiSettings.from_env().prometheus_multiproc_dir


def _fresh_metrics_dir() -> None:
    """Each process of this server writes its HTTP metrics to PROMETHEUS_MULTIPROC_DIR
    (image_api/metrics/latency.py); a scrape adds up every file there, so a new server starts
    from an empty one. Done here, when gunicorn reads its config: before the app is loaded
    (preload_app) and before any worker is forked. Only prometheus-client's ``*.db`` files
    are removed."""
    if not _metrics_dir:
        return
    path = Path(_metrics_dir)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


_fresh_metrics_dir()

# gunicornc's control socket is unused here, and its default path ($HOME/.gunicorn) is shared
# by every gunicorn of a user and unwritable on the containers' read-only root filesystem.
control_socket_disable = True
# Load Django once in the master, before forking: every worker answers its first request
# (a readiness probe) in milliseconds instead of importing the app then.
preload_app = True
worker_class = "project.uvicorn_worker.ApiWorker"
# A worker whose event loop stops answering gunicorn's heartbeat for this long is replaced.
# Views run in threads, so a long local-mode batch does not block it (REQUEST_DEADLINE_SECONDS
# bounds requests).
timeout = 60
# A backstop for memory a request leaves behind (fragmented heap, a library's cache): each
# process is replaced, gracefully, after about this many requests, the jitter keeping the
# processes of one server from restarting together. Uploads are checked from their headers
# and never decoded here, so this is rarely what bounds the memory (tests/api/
# test_front_door_costs.py: 100 hostile uploads leave it within 20 % of idle).
max_requests = 5000
max_requests_jitter = 500
# Idle keep-alive connections stay open this long (uvicorn's timeout_keep_alive). gunicorn's
# default, 2 s, races clients that poll about as often: a request sent on a connection the
# server is closing fails with "connection closed without response".
keepalive = 75
# Every logger hands its records to the root handler (one formatter for all).
logconfig_dict = logging_config(
    _log.log_level,
    _log.log_format,
    loggers={
        "gunicorn.error": {"level": _log.log_level, "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
        "uvicorn.error": {"level": _log.log_level, "handlers": [], "propagate": True},
        "api.access": {"level": "INFO", "handlers": [], "propagate": True},
    },
)
# Warnings (a renamed variable, ...) become log lines in the workers gunicorn forks.
logging.captureWarnings(True)


def on_starting(server: Any) -> None:
    """Before binding: refuse an exposed address without auth, or with the public secret key
    (common/exposure.py)."""
    from common.exposure import ExposureRefused, check_binds

    try:
        check_binds(server.cfg.bind)
    except ExposureRefused as exc:
        server.log.error("startup.refused: %s", exc)
        raise SystemExit(f"gunicorn: {exc}") from None


def child_exit(server: Any, worker: Any) -> None:
    """A worker process ended: its live gauges leave the sum (its counters and histograms
    stay, as prometheus-client's multiprocess mode requires)."""
    if _metrics_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, _metrics_dir)


def post_worker_init(worker: Any) -> None:
    """Each API process runs the retention janitor (image_api/retention.py) and the callback
    sender (image_api/callbacks/sender.py)."""
    from image_api.callbacks.sender import start_sender
    from image_api.retention import start_janitor

    start_janitor()
    start_sender()
