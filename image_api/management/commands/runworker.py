"""``python manage.py runworker``: the same worker as ``python -m workers``."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from workers.__main__ import main


class Command(BaseCommand):
    help = "Run a distributed-mode worker (same flags as `python -m workers`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--worker-id")
        parser.add_argument("--concurrency", type=int)
        parser.add_argument("--prefetch", type=int)
        parser.add_argument("--log-level", dest="worker_log_level")

    def handle(self, *args: Any, **options: Any) -> None:
        argv = []
        for flag, key in (("--worker-id", "worker_id"), ("--concurrency", "concurrency"),
                          ("--prefetch", "prefetch"), ("--log-level", "worker_log_level")):
            if options.get(key) is not None:
                argv += [flag, str(options[key])]
        sys.exit(main(argv))
