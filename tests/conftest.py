"""Django-side fixtures shared by the test suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _no_janitor_thread() -> None:
    """No retention janitor thread behind the tests' requests: tests/api/test_retention.py
    runs sweeps and a janitor of its own explicitly."""
    from django.conf import settings

    settings.JANITOR_INTERVAL_S = 0


@pytest.fixture
def media_root(settings, tmp_path: Path) -> Path:
    """A private, empty MEDIA_ROOT for this test (uploads, samples, outputs)."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


# Real Redis server and real worker processes, for the tests that ask for them.
from tests.support.redis import *  # noqa: E402, F403
from tests.support.workers import *  # noqa: E402, F403
