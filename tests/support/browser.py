"""A real API server process and a real headless Chromium, for the console's browser tests.

- ``console_server``: the API as production runs it (gunicorn and its uvicorn workers:
  tests/support/server.py), on a free loopback port, with its own SQLite database and the
  browser tests' Redis prefix; its MEDIA_ROOT is the one the workers of these tests use.
- ``browser``: Debian's Chromium (``/usr/bin/chromium``, installed by ``make test-deps``)
  driven by Playwright, with a fresh profile directory; never a downloaded browser build.

Both are module-scoped (one server and one browser for a test module) and always stopped.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from distributed.config import QueueConfig
from tests.support.server import ApiServer, run_api_server
from tests.support.workers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "var" / "screenshots"


def run_server(config: QueueConfig, directory: Path, **env: str) -> Iterator[ApiServer]:
    """The API as deployed (tests/support/server.py) with a fresh database, until the
    generator is closed."""
    with run_api_server(directory, queue_config=config,
                        env={"THROTTLE_RATE": "off", "SSE_POLL_SECONDS": "0.2",
                             "RETENTION_SWEEP_SECONDS": "0", "CALLBACK_ALLOW_PRIVATE": "true",
                             "CALLBACK_POLL_SECONDS": "0.2", **env}) as server:
        yield server


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
