"""Recording what became of each delivery: completed, failed (retry or dead letter) or handed
back. An outcome must land, so recording retries through a Redis outage until a cold
shutdown; if the lease expires meanwhile the task is redone elsewhere and this outcome is
fenced (refused) by Redis."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from distributed.clock import now_ms
from distributed.config import QueueConfig
from distributed.errors import RedisUnavailable
from distributed.messages import TaskResult
from distributed.queue import Delivery, Queue
from distributed.registry import Registry, TaskSpan
from distributed.retry import compute_backoff
from distributed.usage import StorageUsage
from workers.state import WorkerState

logger = logging.getLogger("workers.runtime")

T = TypeVar("T")


def log_fields(worker_id: str, d: Delivery, request_id: str | None = None) -> dict[str, Any]:
    """The fields every log line about a task carries."""
    fields: dict[str, Any] = {
        "worker": worker_id, "job_id": d.job_id, "task_id": d.task_id, "attempt": d.attempt,
    }
    if request_id is not None:
        fields["request_id"] = request_id
    return fields


def _tenant_of(payload: str) -> str:
    try:
        tenant = json.loads(payload).get("tenant", "anonymous")
    except (ValueError, AttributeError):
        return "anonymous"
    return tenant if isinstance(tenant, str) else "anonymous"


def span(d: Delivery, outcome: str, duration_ms: float) -> TaskSpan:
    """The timeline entry of a task that ended now after ``duration_ms``."""
    ended = now_ms()
    return TaskSpan(task=d.task_id, job=d.job_id, tenant=_tenant_of(d.payload),
                    started_ms=ended - round(duration_ms), ended_ms=ended, outcome=outcome)


class OutcomeRecorder:
    def __init__(
        self, *, queue: Queue, state: WorkerState, config: QueueConfig, force: threading.Event,
        registry: Registry | None = None, usage: StorageUsage | None = None,
    ) -> None:
        self.queue = queue
        self.registry = registry  # the worker's timeline of recent tasks (when given)
        self.usage = usage  # the tenants' storage usage (when given)
        self.state = state
        self.config = config
        self.force = force
        self.worker_id = state.worker_id

    def complete(self, items: list[tuple[Delivery, TaskResult, str | None]]) -> None:
        """Record results (one round trip); each is fenced on its own."""
        if not items:
            return
        # Out of hand first: a lease renewed after this could only ever report the task as
        # gone, and a task no longer in hand is never reported lost.
        self.state.let_go([d for d, _, _ in items])
        recorded = self._until_recorded(
            lambda: self.queue.complete_many([(d, result) for d, result, _ in items])
        )
        if recorded is None:
            return  # cold shutdown: the leases expire and the tasks are redelivered
        self.state.count(completed=sum(recorded))
        self._timeline([span(d, "completed" if ok else "fenced", result.duration_ms)
                        for (d, result, _), ok in zip(items, recorded, strict=True)])
        for (d, result, request_id), ok in zip(items, recorded, strict=True):
            extra = {**log_fields(self.worker_id, d, request_id),
                     "duration_ms": result.duration_ms}
            if ok:
                logger.info("task.done", extra=extra)
            else:
                logger.warning("task.fenced", extra=extra)

    def charge(self, d: Delivery, tenant: str, stored_bytes: int) -> None:
        """Count what a task's outputs added to the storage in its tenant's usage (less, when
        they replaced larger files), retried through a Redis outage like an outcome. A cold
        shutdown meanwhile loses the figure (logged): the files stay counted short."""
        if self.usage is None or stored_bytes == 0:
            return
        usage = self.usage
        done = self._until_recorded(
            (lambda: usage.charge(tenant, stored_bytes)) if stored_bytes > 0
            else (lambda: usage.release(tenant, -stored_bytes)))
        if done is None:
            logger.warning("usage.charge_lost", extra={
                **log_fields(self.worker_id, d), "tenant": tenant, "bytes": stored_bytes})

    def fail(
        self, d: Delivery, *, kind: str, message: str, permanent: bool, duration_ms: float,
        request_id: str | None = None,
    ) -> None:
        """Record a failed attempt: retried later with backoff, or dead-lettered."""
        delay = compute_backoff(
            d.attempt, base_s=self.config.retry_backoff_base_s,
            max_s=self.config.retry_backoff_max_s,
        )
        self.state.let_go([d])
        verdict = self._until_recorded(lambda: self.queue.fail(
            d, kind=kind, message=message, permanent=permanent, retry_in_s=delay
        ))
        if verdict is None:
            return
        if verdict in ("retry", "dead"):
            self.state.count(failed=1)
        self._timeline([span(d, verdict if verdict in ("retry", "dead") else "fenced",
                             duration_ms)])
        extra = {**log_fields(self.worker_id, d, request_id), "duration_ms": duration_ms,
                 "error": f"{kind}: {message}", "permanent": permanent}
        if verdict == "retry":
            extra["retry_in_s"] = round(delay, 2)
            logger.warning("task.retry", extra=extra)
        elif verdict == "dead":
            logger.error("task.dead_lettered", extra=extra)
        else:
            logger.warning("task.fenced", extra=extra)

    def release(self, deliveries: list[Delivery]) -> None:
        """Hand back deliveries not worked on (warm shutdown); their attempt is not counted.
        One that cannot be handed back (Redis down) is reclaimed when its lease expires."""
        self.state.let_go(deliveries)
        for d in deliveries:
            try:
                if self.queue.release(d):
                    logger.info("task.released", extra=log_fields(self.worker_id, d))
            except RedisUnavailable as exc:
                self.state.note_redis_down(exc)

    def _timeline(self, spans: list[TaskSpan]) -> None:
        """Best effort: a timeline entry lost to an outage costs the console a bar, no more."""
        if self.registry is None:
            return
        try:
            self.registry.record_tasks(self.worker_id, spans)
        except RedisUnavailable as exc:
            self.state.note_redis_down(exc)

    def _until_recorded(self, record: Callable[[], T]) -> T | None:
        """``record()``, retried with backoff while Redis is unreachable; None once a cold
        shutdown is requested (every wait is cut short by it)."""
        attempt = 0
        while not self.force.is_set():
            try:
                result = record()
            except RedisUnavailable as exc:
                attempt += 1
                self.state.note_redis_down(exc)
                self.force.wait(compute_backoff(min(attempt, 6), base_s=0.1, max_s=2.0))
                continue
            self.state.note_redis_up()
            return result
        return None
