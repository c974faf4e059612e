"""The last hour of the cluster, for the console's charts, at a bounded cost.

Every worker (once per bucket, from its maintenance) and every read of the history ask
history.lua to sample the ``{p}:stats`` counters; the first caller of a 10-second bucket
writes one sample, the others find it written. The list is capped at one hour of samples
(~360 short strings), so its size does not grow with traffic, workers or time.

Throughput and failures per bucket are differences of consecutive samples of cumulative
counters; a counter that went down (Redis lost its data) counts as 0 for that bucket.
"""

from __future__ import annotations

import itertools
from typing import Any

import redis

from distributed.clock import now_ms
from distributed.config import QueueConfig
from distributed.errors import translate_redis_errors
from distributed.keys import HISTORY_BUCKET_S, HISTORY_SAMPLES, PRIORITIES
from distributed.scripts import Scripts

# The {p}:stats counters a sample holds, in order.
SAMPLED = (*(f"pending:{p}" for p in PRIORITIES), "running", "delayed", "completed", "dead",
           "failed_attempts")


def bucket_of(ms: int) -> int:
    return ms // 1000 // HISTORY_BUCKET_S


def record_sample(client: redis.Redis, config: QueueConfig, scripts: Scripts | None = None,
                  *, now: int | None = None) -> bool:
    """Write this bucket's sample unless someone did; True if this call wrote it."""
    k = config.keys
    now = now_ms() if now is None else now
    scripts = scripts or Scripts(client)
    with translate_redis_errors():
        written = scripts["history"](
            keys=[k.history(), k.history_last(), k.stats()],
            args=[bucket_of(now), now, HISTORY_SAMPLES, *SAMPLED],
        )
    return bool(written)


def _parse(raw: bytes) -> tuple[int, dict[str, int]] | None:
    parts = raw.decode().split(",")
    if len(parts) != len(SAMPLED) + 1:
        return None  # written by another version: skipped
    try:
        values = [int(float(v)) for v in parts]
    except ValueError:
        return None
    return values[0], dict(zip(SAMPLED, values[1:], strict=True))


def history(client: redis.Redis, config: QueueConfig,
            scripts: Scripts | None = None) -> dict[str, Any]:
    """The samples of the last hour, oldest first: at each, the queue depth, tasks in
    progress and delayed, and what completed, failed (attempts) and was dead-lettered since
    the sample before (``interval_s`` earlier: more than a bucket after a gap, when no
    worker or reader was there to sample)."""
    record_sample(client, config, scripts)
    with translate_redis_errors():
        raw = client.lrange(config.keys.history(), 0, HISTORY_SAMPLES - 1)
    parsed = [s for s in (_parse(r) for r in reversed(raw)) if s is not None]
    cutoff = now_ms() - HISTORY_SAMPLES * HISTORY_BUCKET_S * 1000
    points = []
    for (before_at, before), (at, now_values) in itertools.pairwise(parsed):
        if at < cutoff:
            continue

        def delta(name: str, now_values: dict[str, int] = now_values,
                  before: dict[str, int] = before) -> int:
            return max(0, now_values[name] - before[name])

        points.append({
            "at_ms": at,
            "interval_s": round((at - before_at) / 1000, 3),
            "queue_depth": sum(now_values[f"pending:{p}"] for p in PRIORITIES),
            "in_progress": now_values["running"],
            "delayed": now_values["delayed"],
            "completed": delta("completed"),
            "failed_attempts": delta("failed_attempts"),
            "dead_lettered": delta("dead"),
        })
    return {
        "bucket_s": HISTORY_BUCKET_S,
        "window_s": HISTORY_BUCKET_S * HISTORY_SAMPLES,
        "generated_at_ms": now_ms(),
        "points": points,
    }
