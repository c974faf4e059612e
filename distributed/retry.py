"""Retry policy: pure functions, unit-tested on their own."""

from __future__ import annotations

import random


def compute_backoff(
    attempt: int, *, base_s: float, max_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = first retry).

    Exponential (base * 2**(attempt-1)), capped at ``max_s``, with "equal jitter": half of the
    delay is fixed, the other half random, so retries of many tasks spread out but never fire
    at once.
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    ceiling = min(max_s, base_s * (2 ** (attempt - 1)))
    jitter = (rng or random).uniform(0, ceiling / 2)
    return ceiling / 2 + jitter

