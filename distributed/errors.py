"""One small exception hierarchy for the distributed mode, converted at the border.

Redis client errors are caught where they enter (``translate_redis_errors``) and re-raised,
``from`` the Redis error, as one of these, so no caller depends on redis-py's exception types::

    DistributedError
    ├── RedisUnavailable       Redis down, restarting, unreachable or not configured: retry
    ├── GroupMissing           the consumer group is gone (Redis lost its data): recreate it
    ├── ProtocolError          any other error reply (WRONGTYPE, script error): a bug
    ├── QueueFull              the cap on open tasks would be exceeded
    │   └── TenantQueueFull    the tenant's cap on open tasks would be exceeded
    ├── NotFound               no such job, task or dead letter (malformed ids included)
    ├── IdempotencyKeyReused   the Idempotency-Key came with a different request
    └── InvalidMessage         a task message or result that fails validation
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis


class DistributedError(Exception):
    """Base class of every error raised by ``distributed``."""


class RedisUnavailable(DistributedError):
    """Redis cannot be reached (down, restarting, network cut) or is not configured."""


class GroupMissing(DistributedError):
    """A queue stream has no consumer group (the server restarted without its data)."""


class ProtocolError(DistributedError):
    """Redis answered with an error that no correct use of the protocol produces."""


class QueueFull(DistributedError):
    """The cap on open tasks would be exceeded; retry after ``retry_after_s`` seconds."""

    def __init__(self, open_tasks: int, cap: int, retry_after_s: int) -> None:
        super().__init__(f"{open_tasks} tasks are queued or running; the cap is {cap}")
        self.open_tasks = open_tasks
        self.cap = cap
        self.retry_after_s = retry_after_s


class TenantQueueFull(QueueFull):
    """The tenant's cap on open tasks (``TENANT_MAX_OPEN_TASKS``) would be exceeded; other
    tenants are not affected."""

    def __init__(self, open_tasks: int, cap: int, retry_after_s: int) -> None:
        super().__init__(open_tasks, cap, retry_after_s)
        self.args = (f"this tenant has {open_tasks} open tasks; its cap is {cap}",)


class NotFound(DistributedError):
    """A job, task or dead letter does not exist (or its retention has expired)."""


class JobNotFinished(DistributedError):
    """The job still has tasks pending, running or delayed (cancel it first)."""


class IdempotencyKeyReused(DistributedError):
    """The Idempotency-Key was first used with a different request (another fingerprint)."""


class InvalidMessage(DistributedError):
    """A task message or task result is malformed, of an unknown version or has unknown
    fields. For a task this is permanent: it is dead-lettered as ``invalid_payload``."""


# Error replies that mean "not now" (restarting with AOF, failover in progress).
_NOT_READY = ("LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")


@contextmanager
def translate_redis_errors() -> Iterator[None]:
    """Turn every redis-py error raised inside the block into a :class:`DistributedError`."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise RedisUnavailable(f"Redis is unreachable: {exc}") from exc
    except redis.ResponseError as exc:
        text = str(exc)
        if text.startswith(_NOT_READY):
            raise RedisUnavailable(f"Redis is not ready: {exc}") from exc
        # A script's error carries the command's reply after a prefix, hence "in".
        if "NOGROUP" in text:
            raise GroupMissing(f"the consumer group is missing: {exc}") from exc
        raise ProtocolError(f"Redis refused a command: {exc}") from exc
    except redis.RedisError as exc:
        raise ProtocolError(f"Redis client error: {exc}") from exc
