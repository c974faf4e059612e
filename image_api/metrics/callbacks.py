"""Callback metrics: attempts counted by the sender threads of the API processes (each
process writes its own samples; under gunicorn a scrape adds them up, as for the HTTP
histogram), and the callbacks waiting, read at each scrape."""

from __future__ import annotations

import contextlib

from django.db.models import Q
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from distributed.errors import DistributedError
from image_api.broker import broker, queue_config
from image_api.models import Job

OUTCOMES = ("delivered", "retry", "failed")

CALLBACK_ATTEMPTS = Counter(
    "imgproc_callback_attempts",
    "Job-finished callback attempts, by what followed: delivered (2xx), retry (scheduled "
    "again), failed (given up)",
    ["outcome"],
    registry=None,
)
for _outcome in OUTCOMES:  # every series exists from the start, at 0
    CALLBACK_ATTEMPTS.labels(_outcome)


class CallbacksWaitingCollector(Collector):
    """``imgproc_callbacks_waiting{kind}``: callbacks due or scheduled for a retry, of local
    jobs (database) and distributed ones (the Redis outbox; absent while Redis is down)."""

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily(
            "imgproc_callbacks_waiting", "Job-finished callbacks not yet delivered nor given "
            "up (due now, or waiting for a retry)", labels=["kind"])
        family.add_metric(["local"], Job.objects.filter(~Q(callback_due_at=None)).count())
        if queue_config().redis_url:
            with contextlib.suppress(DistributedError):  # Redis down: imgproc_redis_up says
                family.add_metric(["distributed"], broker().callbacks.due_count())
        return [family]
