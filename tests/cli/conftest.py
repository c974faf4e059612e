"""Fixtures of the CLI tests: a live API server (as deployed: tests/support/server.py) on a
free loopback port with its own database, storage and the suite's real Redis; real workers
on the same storage; and the CLI run as a real subprocess (``python -m imgproc_cli``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from distributed.config import QueueConfig
from distributed.embedded import EmbeddedRedis
from tests.support.server import ApiServer, run_api_server
from tests.support.workers import ROOT


@pytest.fixture(scope="module")
def live_config(redis_server: EmbeddedRedis) -> QueueConfig:
    return QueueConfig(
        redis_url=redis_server.url, prefix="cli", heartbeat_interval_s=0.5, lease_s=1.5,
        max_retries=2, retry_backoff_base_s=0.2, retry_backoff_max_s=1.0,
        max_queued_tasks=1000, retention_days=3600 / 86400, dead_worker_retention_s=60,
    )


@pytest.fixture
def queue_config(live_config: QueueConfig) -> QueueConfig:
    """The workers of ``start_worker`` use the live server's queue settings."""
    return live_config


def serve_api(config: QueueConfig, base: Path, **env: str) -> AbstractContextManager[ApiServer]:
    """The API as deployed (tests/support/server.py: gunicorn and its uvicorn workers) on a
    free loopback port, its database migrated, its storage and var directory under ``base``;
    stopped (SIGTERM, then SIGKILL) on the way out."""
    return run_api_server(base, queue_config=config,
                          env={"SSE_POLL_SECONDS": "0.05", "THROTTLE_RATE": "off",
                               # callbacks to the tests' receiver on 127.0.0.1, retried soon
                               "CALLBACK_ALLOW_PRIVATE": "true", "CALLBACK_POLL_SECONDS": "0.2",
                               "CALLBACK_RETRY_BASE_SECONDS": "0.2", **env})


@pytest.fixture(scope="module")
def live_api(live_config: QueueConfig, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[ApiServer]:
    with serve_api(live_config, tmp_path_factory.mktemp("cli-api")) as api:
        yield api


def cli_env(api_url: str, cache_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGPROC_")}
    env.update(IMGPROC_API_URL=api_url, IMGPROC_CACHE_DIR=str(cache_dir), NO_COLOR="1",
               COLUMNS="200", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def imgproc(live_api: ApiServer, tmp_path: Path) -> Callable[..., Run]:
    """``imgproc(*args)`` runs the CLI against the live server and returns its outcome."""
    cache = tmp_path / "cli-cache"

    def run(*args: str, timeout_s: float = 90, **env: str) -> Run:
        done = subprocess.run([sys.executable, "-m", "imgproc_cli", *args], cwd=ROOT,
                              env=cli_env(live_api.url, cache, **env), capture_output=True,
                              text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        return Run(done.returncode, done.stdout, done.stderr)

    run.cache_dir = cache  # type: ignore[attr-defined]
    return run


def write_image(path: Path, width: int = 64, height: int = 48, seed: int = 0) -> Path:
    """A small random RGB image (its format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """photos/a.png, photos/b.jpg, photos/trip/a.png (a repeated name) and a text file."""
    folder = tmp_path / "photos"
    write_image(folder / "a.png", seed=1)
    write_image(folder / "b.jpg", width=80, height=60, seed=2)
    write_image(folder / "trip" / "a.png", width=40, height=30, seed=3)
    (folder / "notes.txt").write_text("not an image")
    return folder
