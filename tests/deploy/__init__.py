"""Offline checks of the deployment files: Dockerfile, docker-compose.yml, Kubernetes, CI.

Shared helpers live here so the three test modules read the repository the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"

# Where the application reads its environment: Python string literals in the packages,
# `${NAME}` / `$NAME` in the entrypoint script.
CODE_DIRS = ("project", "common", "distributed", "workers", "imaging", "devcluster", "image_api")
EXTRA_PY_FILES = ("manage.py",)
SHELL_FILES = ("docker/entrypoint.sh",)

# The environment contract of the containers (see docker-compose.yml's header).
SHARED_ENV = {
    "REDIS_URL",
    "REDIS_PREFIX",
    "MEDIA_ROOT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "MAX_IMAGE_PIXELS",
}
API_ENV = {
    "AUTH_REQUIRED",
    "DJANGO_SECRET_KEY",
    "METRICS_TOKEN",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "VAR_DIR",
    "MAX_UPLOAD_BYTES",
    "MAX_BATCH_IMAGES",
    "THREAD_POOL_SIZE",
    "PROCESS_POOL_SIZE",
    "MAX_QUEUED_TASKS",
    "GUNICORN_WORKERS",
    "GUNICORN_THREADS",
}
WORKER_ENV = {
    "WORKER_ID",
    "WORKER_CONCURRENCY",
    "WORKER_PREFETCH",
    "HEARTBEAT_INTERVAL_SECONDS",
    "TASK_LEASE_SECONDS",
    "MAX_RETRIES",
    "SHUTDOWN_GRACE_SECONDS",
    "WORKER_HEALTH_FILE",
}
CONTRACT_ENV = SHARED_ENV | API_ENV | WORKER_ENV

# The API and the workers read these into distributed.config.QueueConfig alike: both sides
# must see the same values or they disagree about leases, liveness and retries.
QUEUE_PROTOCOL_ENV = (
    "REDIS_URL",
    "REDIS_PREFIX",
    "HEARTBEAT_INTERVAL_SECONDS",
    "TASK_LEASE_SECONDS",
    "MAX_RETRIES",
    "MAX_QUEUED_TASKS",
)

# Files that configure or start the service's processes: none may use a deprecated name.
DEPLOYMENT_FILES = (
    "docker-compose.yml",
    "docker/Dockerfile",
    "docker/entrypoint.sh",
    "Makefile",
    ".github/workflows/ci.yml",
)
DEPLOYMENT_DIRS = ("deploy", "bench", "tests/support", "tests/integration", "tests/multihost")
# Tests that set an old name on purpose, to prove it still works.
OLD_NAME_TESTS = ("tests/integration/test_log_lines.py",)

_PY_NAME = re.compile(r"""["']([A-Z][A-Z0-9_]+)["']""")
_SH_NAME = re.compile(r"\$\{?([A-Z][A-Z0-9_]+)")


def code_env_names(root: Path = REPO_ROOT) -> set[str]:
    """Every upper-case name the code could read from the environment (a superset)."""
    names: set[str] = set()
    py_files = [root / name for name in EXTRA_PY_FILES]
    for directory in CODE_DIRS:
        py_files.extend(sorted((root / directory).rglob("*.py")))
    for path in py_files:
        if path.is_file():
            names.update(_PY_NAME.findall(path.read_text(encoding="utf-8")))
    for name in SHELL_FILES:
        path = root / name
        if path.is_file():
            names.update(_SH_NAME.findall(path.read_text(encoding="utf-8")))
    return names


def deprecated_env_names() -> set[str]:
    """Old names of renamed variables, from the settings declarations."""
    from common.env import declarations
    from common.settings import PROCESSES

    return {alias for _, cls in PROCESSES for d in declarations(cls) for alias in d.var.aliases}


def deployment_paths(root: Path = REPO_ROOT) -> list[Path]:
    paths = [root / name for name in DEPLOYMENT_FILES if (root / name).is_file()]
    for directory in DEPLOYMENT_DIRS:
        paths.extend(p for p in sorted((root / directory).rglob("*")) if p.is_file()
                     and p.suffix in {".py", ".yaml", ".yml", ".sh", ".md", ".json", ""})
    return [p for p in paths if str(p.relative_to(root)) not in OLD_NAME_TESTS]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    return instructions
