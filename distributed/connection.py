"""Redis connections with timeouts suited to a queue: fail fast, reconnect on the next call."""

from __future__ import annotations

import redis

from distributed.errors import RedisUnavailable


def connect(url: str, *, socket_timeout_s: float = 5.0,
            connect_timeout_s: float = 2.0) -> redis.Redis:
    """A client for ``url``; raises :class:`RedisUnavailable` when no URL is configured.

    No connection is made here; the first command connects (and reconnects after a drop).
    """
    if not url:
        raise RedisUnavailable("REDIS_URL is not set: the distributed mode needs a Redis server")
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        health_check_interval=30,
        retry_on_timeout=False,
    )
