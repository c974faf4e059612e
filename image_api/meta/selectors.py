"""Reads: the health report (database, storage, Redis)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

import project
from distributed.errors import DistributedError
from image_api.broker import broker, queue_config

logger = logging.getLogger(__name__)


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        logger.warning("database health check failed: %s", exc)
        return {"status": "error", "message": str(exc)}
    return {"status": "ok"}


def _check_storage() -> dict[str, Any]:
    root = Path(settings.MEDIA_ROOT)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return {"status": "error", "message": exc.strerror or str(exc)}
    if not os.access(root, os.W_OK | os.X_OK):
        return {"status": "error", "message": "not writable"}
    return {"status": "ok"}


def _check_redis() -> dict[str, Any]:
    if not queue_config().redis_url:
        return {"status": "not_configured"}
    try:
        broker().ping()
    except DistributedError as exc:
        return {"status": "error", "message": str(exc)}
    return {"status": "ok"}


# name -> check; each returns {"status": "ok" | "error" | "not_configured", ...}.
HEALTH_CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _check_database,
    "storage": _check_storage,
    "redis": _check_redis,
}


# Without these the API cannot serve anything; without Redis only the distributed mode stops.
ESSENTIAL = ("database", "storage")


def health_report() -> dict[str, Any]:
    """{"status": "ok" | "degraded" | "error", "version", "dependencies": {name: result}}.

    "error": an essential dependency failed; "degraded": only Redis did (the threading and
    multiprocessing modes still work)."""
    dependencies = {name: check() for name, check in HEALTH_CHECKS.items()}
    failed = {name for name, dep in dependencies.items() if dep["status"] == "error"}
    status = "error" if failed & set(ESSENTIAL) else "degraded" if failed else "ok"
    return {
        "status": status,
        "version": project.__version__,
        "dependencies": dependencies,
    }
