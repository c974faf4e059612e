"""``python -m workers``: run a worker (the container command).

``python -m workers healthcheck``: exit 0 iff this container's worker heartbeated recently
(its WORKER_HEALTH_FILE is fresher than 3 heartbeat intervals); for Docker/Kubernetes probes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from common.env import SettingsError
from common.logs import configure_logging
from common.settings import LogSettings
from distributed.errors import RedisUnavailable
from workers.settings import WorkerSettings

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "healthcheck"])
    parser.add_argument("--worker-id", help="default: WORKER_ID or <hostname>-<pid>")
    parser.add_argument("--concurrency", type=int, help="tasks at once (WORKER_CONCURRENCY)")
    parser.add_argument("--prefetch", type=int, help="tasks taken per fetch (WORKER_PREFETCH)")
    parser.add_argument("--log-level", type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                        help="least severe level logged (LOG_LEVEL)")
    parser.add_argument("--max-age", type=float,
                        help="healthcheck: max heartbeat age in seconds (default 3 intervals)")
    return parser


def healthcheck(settings: WorkerSettings, max_age_s: float | None) -> int:
    if not settings.health_file:
        print("WORKER_HEALTH_FILE is not set", file=sys.stderr)
        return 1
    limit = max_age_s or settings.queue.heartbeat_timeout_s
    try:
        age = time.time() - Path(settings.health_file).stat().st_mtime
    except FileNotFoundError:
        print("no heartbeat yet", file=sys.stderr)
        return 1
    if age > limit:
        print(f"last heartbeat {age:.1f}s ago > {limit:.1f}s", file=sys.stderr)
        return 1
    print(f"ok: last heartbeat {age:.1f}s ago")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            # Logging first, so that a warning about a renamed variable is a log line too.
            log = LogSettings.from_env(log_level=args.log_level)
            configure_logging(log.log_level, log.log_format)
        settings = WorkerSettings.from_env(
            worker_id=args.worker_id, concurrency=args.concurrency, prefetch=args.prefetch,
            log_level=args.log_level,
        )
    except SettingsError as exc:  # a variable that does not parse: say which, exit
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "healthcheck":
        return healthcheck(settings, args.max_age)

    from imaging.processing import limit_native_threads
    from workers.runtime import Worker

    # Parallelism comes from worker processes/threads; OpenCV's own pool would oversubscribe.
    limit_native_threads(1)
    try:
        worker = Worker(settings)
    except RedisUnavailable as exc:  # REDIS_URL unset: a configuration error, not an outage
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
