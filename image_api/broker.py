"""The API's handle on the distributed mode: one Redis client per process, and the shared
QueueConfig from settings (built from the same environment variables the workers read)."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

from distributed.config import QueueConfig
from distributed.connection import connect
from distributed.queue import Queue

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}
_queues: dict[QueueConfig, Queue] = {}


def queue_config() -> QueueConfig:
    return settings.DISTRIBUTED


def redis_client() -> redis.Redis:
    """A client for REDIS_URL (raises RedisUnavailable when it is not set). Cached per URL so
    every request shares one connection pool."""
    url = queue_config().redis_url
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = connect(url, socket_timeout_s=3.0)
        return client


def task_queue() -> Queue:
    """The Queue for the current settings, built once (its scripts and consumer-group check are
    then shared by every request)."""
    config = queue_config()
    client = redis_client()
    with _lock:
        queue = _queues.get(config)
        if queue is None or queue.client is not client:
            queue = _queues[config] = Queue(client, config)
        return queue
