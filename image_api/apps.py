from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.db.backends.signals import connection_created

from common.files import make_private

logger = logging.getLogger(__name__)


def private_sqlite_file(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A SQLite database file (API key hashes, tenants, local jobs) is this user's alone:
    narrowed to 0600 as soon as a connection has created it. SQLite gives its journal files
    the database file's mode."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    path = Path(connection.settings_dict["NAME"])
    try:
        make_private(path)
    except OSError as exc:  # not ours to change (another user's file): say so, carry on
        logger.warning("database.not_private", extra={"path": str(path), "error": str(exc)})


class ImageApiConfig(AppConfig):
    name = "image_api"
    verbose_name = "Image API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        connection_created.connect(private_sqlite_file, dispatch_uid="image_api.private_sqlite")
