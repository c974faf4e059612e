"""Worker settings: one frozen dataclass built once from the environment (and CLI flags)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from distributed.config import QueueConfig

BASE_DIR = Path(__file__).resolve().parent.parent


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class WorkerSettings:
    worker_id: str
    concurrency: int = 1
    prefetch: int = 32
    media_root: str = str(BASE_DIR / "var" / "media")
    max_image_pixels: int = 40_000_000
    shutdown_grace_s: float = 25.0
    health_file: str = ""
    log_level: str = "INFO"
    queue: QueueConfig = field(default_factory=QueueConfig)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> WorkerSettings:
        env = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            value = env.get(name, "")
            return value.strip() or default

        var_dir = get("VAR_DIR", str(BASE_DIR / "var"))
        values: dict[str, object] = {
            "worker_id": get("WORKER_ID", default_worker_id()),
            "concurrency": int(get("WORKER_CONCURRENCY", "1")),
            "prefetch": int(get("WORKER_PREFETCH", "32")),
            "media_root": get("MEDIA_ROOT", str(Path(var_dir) / "media")),
            "max_image_pixels": int(get("MAX_IMAGE_PIXELS", "40000000")),
            "shutdown_grace_s": float(get("SHUTDOWN_GRACE_SECONDS", "25")),
            "health_file": get("WORKER_HEALTH_FILE", ""),
            "log_level": get("LOG_LEVEL", "INFO").upper(),
            "queue": QueueConfig.from_env(env),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.concurrency < 1 or settings.prefetch < 1:
            raise ValueError("WORKER_CONCURRENCY and WORKER_PREFETCH must be >= 1")
        return settings
