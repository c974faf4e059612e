"""One small exception hierarchy for the distributed mode, converted at the border.

Redis client errors are caught where they enter (``translate_redis_errors``) and re-raised as
:class:`RedisUnavailable` so callers never depend on redis-py's exception types.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis


class DistributedError(Exception):
    """Base class of every error raised by ``distributed``."""


class RedisUnavailable(DistributedError):
    """Redis cannot be reached (down, restarting, network cut) or is not configured."""


class QueueFull(DistributedError):
    """The cap on open tasks would be exceeded; retry after ``retry_after_s`` seconds."""

    def __init__(self, open_tasks: int, cap: int, retry_after_s: int) -> None:
        super().__init__(f"{open_tasks} tasks are queued or running; the cap is {cap}")
        self.open_tasks = open_tasks
        self.cap = cap
        self.retry_after_s = retry_after_s


class NotFound(DistributedError):
    """A job, task or dead letter does not exist (or its retention has expired)."""


@contextmanager
def translate_redis_errors() -> Iterator[None]:
    """Turn redis-py connection failures into :class:`RedisUnavailable`."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise RedisUnavailable(f"Redis is unreachable: {exc}") from exc
    except redis.ResponseError as exc:
        # LOADING (server restarting with AOF) and READONLY (failover) mean "not now".
        if str(exc).startswith(("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN")):
            raise RedisUnavailable(f"Redis is not ready: {exc}") from exc
        raise
