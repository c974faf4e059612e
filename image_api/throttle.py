"""The per-key rate limit: THROTTLE_RATE with THROTTLE_BURST for each API key, or for each
client address when a request has no key, as DRF's throttle (every API view but the health
probes). Over it: 429 ``throttled`` with ``Retry-After`` (image_api/errors.py).

The decision is ``distributed.ratelimit``'s GCRA, one atomic step per request: in Redis when
REDIS_URL is set (one limit for every API process and host, timed by Redis's clock), else in
this process's memory (each process its own limit).

When Redis does not answer, the request is served anyway (the limit fails open rather than
taking the API down with Redis): each such request counts in
``imgproc_throttle_unavailable_total`` and a warning ``throttle.unavailable`` is logged at
most once a minute per process, with the number of requests served unthrottled since the
previous one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from distributed.config import QueueConfig
from distributed.errors import DistributedError
from distributed.ratelimit import Limit, LocalRateLimiter, RateLimiter, RedisRateLimiter
from image_api.broker import queue_config
from image_api.metrics.throttle import THROTTLE_UNAVAILABLE, THROTTLED
from image_api.models import ApiKey

logger = logging.getLogger(__name__)

WARN_EVERY_S = 60.0

_lock = threading.Lock()
_redis_limiters: dict[QueueConfig, RedisRateLimiter] = {}
_local_limiter = LocalRateLimiter()


def limiter() -> RateLimiter:
    """The limiter of the current settings: Redis's (one client per config, built once) or
    this process's."""
    config = queue_config()
    if not config.redis_url:
        return _local_limiter
    found = _redis_limiters.get(config)
    if found is None:
        with _lock:
            found = _redis_limiters.get(config)
            if found is None:
                found = _redis_limiters[config] = RedisRateLimiter.connect(config)
    return found


@lru_cache(maxsize=64)
def _limit(rate: str, burst: int) -> Limit:
    return Limit.parse(rate, burst)


class FailOpenLog:
    """Counts the requests served without a decision; a warning line at most once per
    ``every_s``, saying how many there were since the last line."""

    def __init__(self, every_s: float = WARN_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._unlogged = 0

    def note(self, error: Exception) -> None:
        THROTTLE_UNAVAILABLE.inc()
        with self._lock:
            now = self._clock()
            self._unlogged += 1
            if self._last is not None and now - self._last < self.every_s:
                return
            count, self._unlogged, self._last = self._unlogged, 0, now
        logger.warning("throttle.unavailable", extra={
            "error": str(error), "unthrottled_requests": count,
            "detail": "the rate limit's store did not answer: requests are served without "
                      "a rate limit until it does",
        })


FAIL_OPEN = FailOpenLog()


class KeyRateThrottle(BaseThrottle):
    """THROTTLE_RATE and THROTTLE_BURST per API key id, or per client address (DRF's
    ``get_ident``) for a request without a key."""

    def __init__(self) -> None:
        self._wait_s: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        # Read per request, so the rate follows settings (and tests can change it).
        rate = settings.THROTTLE_RATE
        if not rate:
            return True
        key = request.auth
        ident = key.id if isinstance(key, ApiKey) else self.get_ident(request)
        try:
            decision = limiter().hit(ident, _limit(rate, settings.THROTTLE_BURST))
        except DistributedError as exc:  # Redis down: serve, and say so
            FAIL_OPEN.note(exc)
            return True
        if decision.allowed:
            return True
        THROTTLED.inc()
        self._wait_s = decision.retry_after_ms / 1000
        return False

    def wait(self) -> float | None:
        """Seconds until a request of this identity would be admitted (DRF's Retry-After)."""
        return self._wait_s
