"""The cluster's figures, read from Redis when Prometheus scrapes (through the Broker).

Counters come from ``{p}:stats`` (event totals that only grow; Prometheus' rate() copes with
the reset of a Redis that lost its data), gauges from the task states, the worker registry
and the pending lists, histograms from what the workers pushed (distributed/metrics.py).
With Redis down, or no REDIS_URL, only ``imgproc_redis_up 0``: the scrape still answers.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from distributed.errors import DistributedError
from distributed.keys import PRIORITIES
from distributed.metrics import FILTER_SERIES, TASK_SERIES, ClusterMetrics, Histogram
from image_api.broker import broker

# (metric name without _total, {p}:stats field, help)
COUNTERS = (
    ("imgproc_tasks_accepted", "accepted", "Tasks accepted at submission"),
    ("imgproc_tasks_completed", "completed", "Tasks completed"),
    ("imgproc_tasks_failed", "failed_attempts",
     "Failed attempts (each then retried or dead-lettered)"),
    ("imgproc_tasks_retried", "retried", "Failed attempts scheduled for a retry"),
    ("imgproc_tasks_reclaimed", "reclaimed",
     "Deliveries taken over after their lease expired (a worker died or hung)"),
    ("imgproc_tasks_fenced", "fenced",
     "Late outcomes refused because the task had been reclaimed from their worker"),
    ("imgproc_tasks_cancelled", "cancelled", "Tasks cancelled (or dead letters discarded)"),
    ("imgproc_dead_letters_requeued", "requeued", "Dead letters re-queued"),
    ("imgproc_workers_reaped", "workers_reaped",
     "Workers declared dead after missing their heartbeats"),
)
WORKER_STATUSES = ("healthy", "degraded", "unhealthy", "dead", "stopped")


def _histogram(family: HistogramMetricFamily, labels: list[str], h: Histogram) -> None:
    family.add_metric(labels, [(floatToGoString(bound), count) for bound, count in h.buckets],
                      sum_value=h.sum_s)


def families(m: ClusterMetrics) -> Iterator[Metric]:
    """The metric families of one reading."""
    queue, status = m.status["queue"], m.status
    depth = GaugeMetricFamily("imgproc_queue_depth", "Pending tasks, by priority",
                              labels=["priority"])
    age = GaugeMetricFamily(
        "imgproc_oldest_pending_task_age_seconds",
        "How long the longest-waiting pending task has waited (since submission, or since "
        "its retry fell due); 0 with none pending", labels=["priority"])
    for priority in PRIORITIES:
        depth.add_metric([priority], queue["pending"][priority])
        since = m.oldest_pending_ms.get(priority)
        age.add_metric([priority], max(0.0, (m.now_ms - since) / 1000) if since else 0.0)
    yield depth
    yield age
    yield GaugeMetricFamily("imgproc_tasks_in_progress", "Tasks in a worker's hands",
                            value=queue["in_progress"])
    yield GaugeMetricFamily("imgproc_tasks_delayed", "Tasks waiting for a retry",
                            value=queue["delayed"])
    yield GaugeMetricFamily("imgproc_dead_letters", "Tasks in the dead-letter queue",
                            value=queue["dead_lettered"])
    stats = {"accepted": queue["accepted"], "completed": queue["completed"],
             "failed_attempts": queue["failed_attempts"], "retried": queue["retried"],
             "reclaimed": queue["reclaimed"], "fenced": queue["fenced_completions"],
             "cancelled": queue["cancelled"], "requeued": queue["requeued"],
             "workers_reaped": queue["workers_reaped"]}
    for name, field, text in COUNTERS:
        yield CounterMetricFamily(name, text, value=stats[field])
    workers = GaugeMetricFamily(
        "imgproc_workers", "Workers by status (dead and stopped ones are kept for "
        "DEAD_WORKER_RETENTION_SECONDS)", labels=["status"])
    summary = status["worker_summary"]
    for name in (*WORKER_STATUSES, *sorted(set(summary) - set(WORKER_STATUSES))):
        workers.add_metric([name], summary.get(name, 0))
    yield workers
    heartbeat = GaugeMetricFamily(
        "imgproc_worker_heartbeat_age_seconds", "Seconds since each live worker's last "
        "heartbeat", labels=["worker"])
    for w in status["workers"]:
        if w["status"] not in ("dead", "stopped"):
            heartbeat.add_metric([w["id"]], w["seconds_since_heartbeat"])
    yield heartbeat
    task = HistogramMetricFamily(
        "imgproc_task_duration_seconds", "Run time of completed tasks, as their worker timed "
        "them (pushed through Redis)")
    per_filter = HistogramMetricFamily(
        "imgproc_filter_duration_seconds", "Run time of one pipeline step of a completed "
        "task, by filter (pushed through Redis)", labels=["filter"])
    for series, h in sorted(m.durations.items()):
        if series == TASK_SERIES:
            _histogram(task, [], h)
        elif series.startswith(FILTER_SERIES):
            _histogram(per_filter, [series[len(FILTER_SERIES):]], h)
    yield task
    yield per_filter


class ClusterCollector(Collector):
    """Reads the cluster through the API's Broker at each collect()."""

    def collect(self) -> Iterator[Metric]:
        try:
            reading = broker().metrics()
        except DistributedError:  # RedisUnavailable, or REDIS_URL unset
            reading = None
        yield GaugeMetricFamily("imgproc_redis_up", "1 when this scrape could read Redis",
                                value=0 if reading is None else 1)
        if reading is not None:
            yield from families(reading)
