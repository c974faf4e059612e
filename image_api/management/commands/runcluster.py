"""``python manage.py runcluster``: Redis (embedded unless REDIS_URL), the API under gunicorn
and N workers under supervisord, in the foreground; Ctrl+C stops everything."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from devcluster.supervisor import ClusterPlan, run_cluster


class Command(BaseCommand):
    help = "Run the whole service locally (see `make run`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", 3)))

    def handle(self, *args: Any, **options: Any) -> None:
        plan = ClusterPlan.build(
            host=options["host"], port=options["port"], workers=options["workers"],
            base_dir=settings.BASE_DIR, var_dir=settings.VAR_DIR,
        )
        raise SystemExit(run_cluster(plan, media_root=settings.MEDIA_ROOT))
