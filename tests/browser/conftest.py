"""One API server, one Redis prefix and one Chromium for the browser tests of a module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from distributed.config import QueueConfig
from distributed.embedded import EmbeddedRedis
from distributed.queue import Queue
from tests.support.browser import launch_chromium, run_server
from tests.support.server import ApiServer


@pytest.fixture(scope="module")
def console_config(redis_server: EmbeddedRedis) -> QueueConfig:
    # A prefix of its own: the other tests' flushes never meet this module's keys.
    return QueueConfig(
        redis_url=redis_server.url, prefix=f"b{uuid.uuid4().hex[:8]}",
        heartbeat_interval_s=0.5, lease_s=3.0, max_retries=1, retry_backoff_base_s=0.2,
        retry_backoff_max_s=1.0, max_queued_tasks=1000, retention_days=3600 / 86400,
        dead_worker_retention_s=60,
    )


@pytest.fixture
def queue_config(console_config: QueueConfig) -> QueueConfig:
    """The workers started by ``start_worker`` join this module's cluster."""
    return console_config


@pytest.fixture(scope="module")
def console_server(console_config: QueueConfig,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    yield from run_server(console_config, tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="module")
def console_queue(console_config: QueueConfig) -> Iterator[Queue]:
    client = redis.Redis.from_url(console_config.redis_url, socket_timeout=5)
    queue = Queue(client, console_config)
    queue.ensure_groups()
    try:
        yield queue
    finally:
        client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launch_chromium()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new tab; the test fails on any script error or failed console line it shows."""
    tab = browser.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    tab.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}")
           if msg.type == "error" else None)
    tab.errors = errors
    try:
        yield tab
    finally:
        tab.close()
