"""``manage.py purge_expired``: one retention sweep now (the API's janitor thread does it every
RETENTION_SWEEP_SECONDS anyway): uploads, outputs and local jobs older than RETENTION_DAYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from image_api.retention import sweep_if_free


class Command(BaseCommand):
    help = "Delete uploads, outputs and local jobs older than RETENTION_DAYS (one sweep)."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = sweep_if_free()
        if removed is None:
            self.stdout.write("another process is sweeping; nothing done")
            return
        self.stdout.write(", ".join(f"{count} {kind}" for kind, count in removed.items())
                          + " removed")
