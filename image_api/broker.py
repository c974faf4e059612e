"""The API's handle on the distributed mode: one ``distributed.broker.Broker`` per process
for the QueueConfig of the settings (built from the same environment variables the workers
read). No Redis client here: ``distributed`` owns the connection."""

from __future__ import annotations

import threading

from django.conf import settings

from distributed.broker import Broker
from distributed.config import QueueConfig
from distributed.queue import Queue

_lock = threading.Lock()
_brokers: dict[QueueConfig, Broker] = {}


def queue_config() -> QueueConfig:
    return settings.DISTRIBUTED


def broker() -> Broker:
    """The Broker for the current settings, built once (its connection pool, scripts and
    consumer-group check are then shared by every request). Raises RedisUnavailable when
    REDIS_URL is not set."""
    config = queue_config()
    with _lock:
        found = _brokers.get(config)
        if found is None:
            found = _brokers[config] = Broker(config)
        return found


def task_queue() -> Queue:
    return broker().queue
