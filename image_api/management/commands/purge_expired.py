"""``python manage.py purge_expired``: one retention sweep now (what the API's janitor does
every JANITOR_INTERVAL_SECONDS)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from distributed.errors import DistributedError
from image_api.retention import SWEEP_LIMIT, sweep_locked


class Command(BaseCommand):
    help = ("Delete uploads, outputs, thumbnails and local job records older than "
            "RETENTION_DAYS, and trim expired ids from the distributed jobs index.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=SWEEP_LIMIT,
                            help="most files (and job records) deleted by this sweep")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        try:
            report = sweep_locked(limit=options["limit"])
        except DistributedError as exc:  # the lock lives in Redis when REDIS_URL is set
            raise CommandError(f"Redis is unavailable: {exc}") from exc
        if report.locked:
            raise CommandError("another process is sweeping; try again later")
        self.stdout.write(json.dumps(report.as_fields()))
