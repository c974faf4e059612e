"""What a metrics scrape reads from Redis, and the task-duration histograms workers push.

Workers are not scraped: they come and go, scale to zero, and docker-compose publishes no
port of theirs. Each batch of completions adds its durations to fixed-bucket counters in
Redis instead, in the pipeline that records the results (no extra round trip), and the API's
``/metrics`` reads them back at scrape time along with the ``{p}:stats`` counters, the
worker registry and the age of the oldest pending task.

``{p}:metrics:durations`` (HASH, keys.py) holds one histogram per series: field
``<series>|<i>`` counts the observations of bucket ``i`` (the first bound of
:data:`DURATION_BUCKETS_S` at or above the value; ``inf`` past the last), ``<series>|sum_us``
their sum in microseconds. Series: ``task`` (a whole task, as its worker timed it) and
``filter:<name>`` (one pipeline step). The set of fields is fixed by the buckets and the
filter registry, so the hash never grows past a few hundred fields.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from distributed.clock import now_ms
from distributed.config import QueueConfig
from distributed.errors import translate_redis_errors
from distributed.keys import Keys
from distributed.messages import TaskResult
from distributed.pending import oldest_pending_ms
from distributed.status import cluster_status

# Upper bounds in seconds: a no-op is ~0.1 ms, a filter step 1 ms-1 s, an image task up to
# the task time limit (60 s by default).
DURATION_BUCKETS_S = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
TASK_SERIES = "task"
FILTER_SERIES = "filter:"
# Filter names come from the worker's own registry; anything else is not a series.
_FILTER_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _observe(increments: Counter[str], series: str, seconds: float) -> None:
    seconds = max(0.0, seconds)
    i = bisect_left(DURATION_BUCKETS_S, seconds)
    increments[f"{series}|{i if i < len(DURATION_BUCKETS_S) else 'inf'}"] += 1
    increments[f"{series}|sum_us"] += round(seconds * 1_000_000)


def duration_increments(results: Iterable[TaskResult]) -> Counter[str]:
    """The HINCRBY increments of a batch of results, summed per field."""
    increments: Counter[str] = Counter()
    for result in results:
        _observe(increments, TASK_SERIES, result.duration_ms / 1000)
        for step in result.timings:
            name, ms = step.get("filter"), step.get("ms")
            if (isinstance(name, str) and _FILTER_NAME.fullmatch(name)
                    and isinstance(ms, int | float) and not isinstance(ms, bool)):
                _observe(increments, FILTER_SERIES + name, ms / 1000)
    return increments


def add_durations(pipe: Any, keys: Keys, results: Iterable[TaskResult]) -> None:
    """Queue the histogram updates of ``results`` on ``pipe`` (a redis-py pipeline): one
    HINCRBY per distinct field, sent with whatever else the pipeline carries."""
    for name, amount in sorted(duration_increments(results).items()):
        pipe.hincrby(keys.durations(), name, amount)


@dataclass(frozen=True)
class Histogram:
    """One series: cumulative counts per upper bound (the last is ``inf``), count, sum."""

    buckets: tuple[tuple[float, int], ...]
    count: int
    sum_s: float


def parse_durations(raw: dict[bytes, bytes]) -> dict[str, Histogram]:
    """The histograms of ``{p}:metrics:durations`` as read by HGETALL, by series."""
    per_series: dict[str, dict[str, int]] = {}
    for key, value in raw.items():
        series, _, slot = key.decode().rpartition("|")
        if series:
            per_series.setdefault(series, {})[slot] = int(value)
    out = {}
    bounds = [*DURATION_BUCKETS_S, float("inf")]
    for series, slots in per_series.items():
        running, buckets = 0, []
        for i, bound in enumerate(bounds):
            running += slots.get("inf" if i == len(DURATION_BUCKETS_S) else str(i), 0)
            buckets.append((bound, running))
        out[series] = Histogram(tuple(buckets), running, slots.get("sum_us", 0) / 1_000_000)
    return out


@dataclass(frozen=True)
class ClusterMetrics:
    """Everything a scrape reports from Redis (see image_api/metrics/collector.py)."""

    now_ms: int
    status: dict[str, Any]  # distributed.status.cluster_status
    oldest_pending_ms: dict[str, int | None]
    durations: dict[str, Histogram] = field(default_factory=dict)


def cluster_metrics(client: redis.Redis, config: QueueConfig) -> ClusterMetrics:
    """One scrape's reading: O(workers + tenants with pending work) plus a few O(1) calls."""
    oldest = oldest_pending_ms(client, config.keys)
    status = cluster_status(client, config, oldest_ms=oldest)
    with translate_redis_errors():
        raw = client.hgetall(config.keys.durations())
    return ClusterMetrics(now_ms(), status, oldest, parse_durations(raw))
