"""``python -m devcluster ps|stop|demo``: the make targets that control a running local
cluster (``make ps``, ``make stop``, ``make demo``)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from devcluster.control import Control, ps, stop
from devcluster.demo import run_demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devcluster", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("ps", "stop"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--var-dir", type=Path, required=True)
        cmd.add_argument("--grace-seconds", type=float, default=25.0,
                         help="the workers' SHUTDOWN_GRACE_SECONDS")
    demo = sub.add_parser("demo")
    demo.add_argument("--api-url", default="http://127.0.0.1:8000")
    demo.add_argument("--images", type=int, default=480)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return run_demo(args.api_url, images=args.images)
    ctl = shutil.which("supervisorctl", path=str(Path(sys.executable).parent)) or "supervisorctl"
    control = Control(var_dir=args.var_dir.resolve(), supervisorctl=ctl)
    if args.command == "ps":
        return ps(control)
    return stop(control, grace_s=args.grace_seconds)


if __name__ == "__main__":
    sys.exit(main())
