"""``python manage.py runcluster``: Redis (embedded unless REDIS_URL), the API under gunicorn
and N workers under supervisord, in the foreground; Ctrl+C stops everything."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from common.exposure import ExposureRefused, check_binds
from common.settings import ClusterSettings
from devcluster.supervisor import ClusterPlan, run_cluster


class Command(BaseCommand):
    help = "Run the whole service locally (see `make run`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, help="default: PORT, else 8000")
        parser.add_argument("--host", help="default: HOST, else 127.0.0.1")
        parser.add_argument("--workers", type=int, help="default: WORKERS, else 3")

    def handle(self, *args: Any, **options: Any) -> None:
        cluster = ClusterSettings.from_env(
            host=options["host"], port=options["port"], workers=options["workers"]
        )
        try:
            check_binds([f"{cluster.host}:{cluster.port}"])
        except ExposureRefused as exc:
            raise CommandError(str(exc)) from None
        plan = ClusterPlan.build(
            cluster, redis_url=settings.DISTRIBUTED.redis_url, base_dir=settings.BASE_DIR,
            var_dir=settings.VAR_DIR, media_root=settings.MEDIA_ROOT,
            auth_required=settings.AUTH_REQUIRED,
        )
        raise SystemExit(run_cluster(plan))
