"""Django-side fixtures shared by the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_throttle(settings) -> None:
    """The per-key throttle is off unless a test turns it on (tests/api/test_auth.py): a
    suite sends far more requests per minute from one address than THROTTLE_RATE allows."""
    settings.THROTTLE_RATE = ""


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:
    """A private, empty MEDIA_ROOT for this test (uploads, samples, outputs)."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


# Real Redis server and real worker processes, for the tests that ask for them; a live API
# server process (api_server) and an HTTP receiver for a client's requests (receiver).
from tests.support.receiver import *  # noqa: E402, F403
from tests.support.redis import *  # noqa: E402, F403
from tests.support.server import *  # noqa: E402, F403
from tests.support.workers import *  # noqa: E402, F403
