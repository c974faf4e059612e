"""Rate limits by GCRA (the generic cell rate algorithm, as redis-cell, Sidekiq Enterprise
and BullMQ limit rates): one number per limited identity, its theoretical arrival time (TAT).

A :class:`Limit` of ``count`` requests per ``period_s`` spaces requests one emission
interval apart (``period_s / count``) and lets ``burst`` more come at once. A request is
admitted when the TAT is at most ``burst`` intervals ahead of now, and pushes it one interval
on. So in any window of ``W`` seconds at most ``burst + 1 + count * W / period_s`` requests
are admitted (``burst + 1`` at once from idle, then one per interval), however many clients
race: each decision is one atomic step.

Two limiters answer :class:`Decision`\\s the same way (:class:`RateLimiter`):

- :class:`RedisRateLimiter`: one script call per request (lua/ratelimit.lua) on the key
  ``{p}:rl:{ident}``, timed by Redis's own clock, so every process and host shares the limit
  and their clocks need not agree. The key expires once its bucket is full again.
- :class:`LocalRateLimiter`: the same algorithm (:func:`gcra`) in this process's memory under
  a lock. Each process counts alone: N processes admit up to N times the limit.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis

from distributed.config import QueueConfig
from distributed.connection import connect
from distributed.errors import translate_redis_errors
from distributed.keys import Keys
from distributed.scripts import Scripts

# The periods THROTTLE_RATE may name (DRF's s/m/h/d, spelled out or not).
PERIODS_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
             "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"\s*(\d+)\s*/\s*([a-z]+?)s?\s*", re.IGNORECASE)
US = 1_000_000


def parse_rate(text: str) -> tuple[int, int]:
    """``"1200/min"`` as (1200, 60): a positive count per s, min, h or day (also written
    second, minute, hour, m, d, or plural). ValueError says what was expected."""
    match = _RATE.fullmatch(text)
    period = PERIODS_S.get(match.group(2).lower()) if match else None
    if match is None or period is None or int(match.group(1)) < 1:
        raise ValueError("expected <count>/<period>, a count of at least 1 per s, min, h or "
                         "day, e.g. 1200/min")
    return int(match.group(1)), period


def default_burst(rate: str) -> int:
    """A tenth of the rate's per-minute count, rounded down (0 for no rate)."""
    if not rate:
        return 0
    count, period_s = parse_rate(rate)
    return count * 60 // (10 * period_s)


@dataclass(frozen=True)
class Limit:
    """``count`` requests per ``period_s`` seconds, ``burst`` more at once (0: evenly
    spaced, one at a time)."""

    count: int
    period_s: int
    burst: int = 0

    @classmethod
    def parse(cls, rate: str, burst: int) -> Limit:
        count, period_s = parse_rate(rate)
        return cls(count, period_s, burst)

    @property
    def interval_us(self) -> int:
        """The emission interval, rounded up to the microsecond (never faster than the
        rate)."""
        return -(-self.period_s * US // self.count)

    @property
    def tolerance_us(self) -> int:
        return self.burst * self.interval_us


@dataclass(frozen=True)
class Decision:
    """One request's answer. ``remaining``: requests that would be admitted right after it
    if they came at once; ``retry_after_ms``: 0 when admitted, else the wait before a request
    would be; ``reset_after_ms``: until the limit is back to idle (its full burst)."""

    allowed: bool
    remaining: int
    retry_after_ms: int
    reset_after_ms: int

    @classmethod
    def from_us(cls, allowed: int, remaining: int, retry_after_us: int,
                reset_after_us: int) -> Decision:
        return cls(bool(allowed), max(0, int(remaining)), _ceil_ms(retry_after_us),
                   _ceil_ms(reset_after_us))


def _ceil_ms(us: int) -> int:
    return -(-int(us) // 1000)


def gcra(tat_us: int, now_us: int, limit: Limit) -> tuple[Decision, int]:
    """(the decision on one request at ``now_us``, the TAT after it), for a limit whose TAT
    was ``tat_us`` (0: never used). The algorithm of lua/ratelimit.lua, step for step."""
    interval, tolerance = limit.interval_us, limit.tolerance_us
    tat = max(tat_us, now_us)
    allow_at = tat - tolerance
    if now_us < allow_at:
        return Decision.from_us(0, 0, allow_at - now_us, tat - now_us), tat_us
    new_tat = tat + interval
    remaining = (now_us + tolerance - new_tat) // interval + 1
    return Decision.from_us(1, remaining, 0, new_tat - now_us), new_tat


class RateLimiter(Protocol):
    def hit(self, ident: str, limit: Limit) -> Decision:
        """Count one request of ``ident`` against ``limit``; the decision on it."""
        ...


class RedisRateLimiter:
    """The limit in Redis, shared by every process that uses the same server and prefix.
    :meth:`hit` raises :class:`~distributed.errors.RedisUnavailable` when Redis does not
    answer (the caller decides whether to serve anyway)."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts | None = None) -> None:
        self.client = client
        self.keys = keys
        self._script = (scripts or Scripts(client))["ratelimit"]

    @classmethod
    def connect(cls, config: QueueConfig, *, timeout_s: float = 1.0) -> RedisRateLimiter:
        """A limiter with a client of its own, quick to give up (``timeout_s`` to connect and
        per call): it stands in front of every request, Redis-backed or not."""
        client = connect(config.redis_url, socket_timeout_s=timeout_s,
                         connect_timeout_s=timeout_s)
        return cls(client, config.keys)

    def hit(self, ident: str, limit: Limit) -> Decision:
        with translate_redis_errors():
            reply = self._script(keys=[self.keys.rate_limit(ident)],
                                 args=[limit.interval_us, limit.tolerance_us])
        return Decision.from_us(*(int(v) for v in reply))

    def close(self) -> None:
        self.client.close()


def monotonic_us() -> int:
    return time.monotonic_ns() // 1000


class LocalRateLimiter:
    """The limit in this process's memory, for a service without Redis: exact within the
    process (a lock around :func:`gcra`), not shared with any other. Identities whose bucket
    is full again are forgotten, at most once per ``sweep_s``."""

    def __init__(self, clock: Callable[[], int] = monotonic_us, *, sweep_s: float = 60.0):
        self._clock = clock
        self._lock = threading.Lock()
        self._tats: dict[str, int] = {}
        self._sweep_us = int(sweep_s * US)
        self._next_sweep = 0

    def hit(self, ident: str, limit: Limit) -> Decision:
        with self._lock:
            now = self._clock()
            if now >= self._next_sweep:
                self._tats = {i: tat for i, tat in self._tats.items() if tat > now}
                self._next_sweep = now + self._sweep_us
            decision, tat = gcra(self._tats.get(ident, 0), now, limit)
            if decision.allowed:
                self._tats[ident] = tat
            return decision

    def __len__(self) -> int:
        """Identities remembered (those not yet swept)."""
        return len(self._tats)
