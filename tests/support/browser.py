"""A real API server process and a real headless Chromium, for the console's browser tests.

- ``console_server``: the API under uvicorn (ASGI, so the job event stream works as in
  production), on a free loopback port, with its own SQLite database and the browser tests'
  Redis prefix; its MEDIA_ROOT is the one the workers of these tests use.
- ``browser``: Debian's Chromium (``/usr/bin/chromium``, installed by ``make test-deps``)
  driven by Playwright, with a fresh profile directory; never a downloaded browser build.

Both are module-scoped (one server and one browser for a test module) and always stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from distributed.config import QueueConfig
from tests.support.workers import ROOT, wait_until, worker_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "var" / "screenshots"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    media_root: Path
    log_path: Path
    env: dict[str, str]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def manage(self, *args: str) -> str:
        """Run a manage.py command against this server's database; its standard output."""
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                              check=True, timeout=120, capture_output=True,
                              text=True).stdout


def run_server(config: QueueConfig, directory: Path, **env: str) -> Iterator[Server]:
    """Migrate a fresh database and run uvicorn until the generator is closed."""
    media = directory / "media"
    media.mkdir(parents=True, exist_ok=True)
    environ = worker_env(config, media, VAR_DIR=str(directory / "var"),
                         DJANGO_ALLOWED_HOSTS="127.0.0.1", THROTTLE_RATE="",
                         SSE_POLL_SECONDS="0.2", RETENTION_SWEEP_SECONDS="0", **env)
    environ.pop("DJANGO_SETTINGS_MODULE", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=environ,
                   check=True, timeout=120)
    port = free_port()
    log_path = directory / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host",
             "127.0.0.1", "--port", str(port), "--no-access-log"],
            cwd=ROOT, env=environ, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", media, log_path, environ)
    try:
        def up() -> bool:
            assert proc.poll() is None, server.log()
            with contextlib.suppress(requests.ConnectionError):
                return requests.get(f"{server.url}/api/health/live/", timeout=2).ok
            return False

        wait_until(up, 60, message="the API server to answer")
        yield server
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)


def launch_chromium() -> Iterator[Any]:
    """A Playwright persistent context on Debian's Chromium with a fresh profile."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} missing: sh tests/support/apt-install.sh chromium (as root; "
                    "`make test-deps` does it)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, \
            sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 860})
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot as a test artifact under var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
