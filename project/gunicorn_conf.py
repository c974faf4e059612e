"""gunicorn's configuration for the API: its lines in the service's one log format.

    gunicorn project.wsgi:application -c python:project.gunicorn_conf --bind ... --workers ...

gunicorn's own lines (startup, worker boots, errors) and one access line per request
(``event: http.access`` with method, path, status, duration_ms, bytes, remote_addr and the
request_id the API answered with) go through common/logs.py's formatter, to stderr, like
Django's lines and the workers'. Process counts and the bind address stay on the command
line (docker/entrypoint.sh, devcluster/supervisor.py).

gunicorn applies every module-level name it knows as a setting: keep other names private.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from common.logs import logging_config
from common.settings import LogSettings


class AccessLogger(glogging.Logger):
    """gunicorn's logger, with a structured access line instead of the Apache format."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        headers = resp.headers.items() if hasattr(resp.headers, "items") else resp.headers
        response_headers = {str(name).lower(): value for name, value in headers}
        extra: dict[str, Any] = {
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "bytes": getattr(resp, "sent", None),
            "remote_addr": environ.get("REMOTE_ADDR"),
        }
        if response_headers.get("x-request-id"):
            extra["request_id"] = response_headers["x-request-id"]
        self.access_log.info("http.access", extra=extra)


_log = LogSettings.from_env()

# gunicornc's control socket is unused here, and its default path ($HOME/.gunicorn) is shared
# by every gunicorn of a user and unwritable on the containers' read-only root filesystem.
control_socket_disable = True
# Load Django once in the master, before forking: every worker answers its first request
# (a readiness probe) in milliseconds instead of importing the app then.
preload_app = True
logger_class = AccessLogger
# Both gunicorn loggers hand their records to the root handler (one formatter for all).
logconfig_dict = logging_config(
    _log.log_level,
    _log.log_format,
    loggers={
        "gunicorn.error": {"level": _log.log_level, "handlers": [], "propagate": True},
        "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
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


def post_worker_init(worker: Any) -> None:
    """Each API process runs the retention janitor (image_api/retention.py)."""
    from image_api.retention import start_janitor

    start_janitor()
