"""A lease lock in Redis: one holder at a time cluster-wide, released by its holder only, and
expiring by itself when the holder dies (SET NX PX + compare-and-delete)."""

from __future__ import annotations

import secrets

import redis

from distributed.errors import translate_redis_errors
from distributed.scripts import source


def acquire(client: redis.Redis, key: str, ttl_ms: int) -> str | None:
    """The holder's token, or None when another holder has the lock."""
    token = secrets.token_hex(16)
    with translate_redis_errors():
        return token if client.set(key, token, nx=True, px=ttl_ms) else None


def release(client: redis.Redis, key: str, token: str) -> bool:
    """Release a lock taken with ``token``; False when it had expired (or was taken over)."""
    with translate_redis_errors():
        return bool(client.register_script(source("unlock"))(keys=[key], args=[token]))
