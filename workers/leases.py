"""The lease keeper: one thread that renews the leases of the deliveries in hand, heartbeats
into the registry (and learns from it whether the worker is asked to drain) and runs the
shared maintenance (promote due retries, reap dead workers, sample the history).

A lease is reported lost only when Redis says the task runs under another owner or attempt
AND the delivery is still in hand after the renewal: a task that ended in between (completed,
failed, handed back) is not in hand any more, and Redis answers "gone" for it anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from distributed.clock import now_ms
from distributed.config import QueueConfig
from distributed.errors import RedisUnavailable
from distributed.history import bucket_of, record_sample
from distributed.queue import Delivery, Lease, Queue
from distributed.registry import Registry, WorkerInfo
from workers.outcomes import log_fields
from workers.state import WorkerState

logger = logging.getLogger("workers.runtime")

MAINTENANCE_INTERVAL_S = 1.0


def touch_health_file(path: str) -> None:
    """Refresh the file the container's health probe checks (``python -m workers
    healthcheck``); nothing when no file is configured."""
    if path:
        file = Path(path)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.touch()


class LeaseKeeper:
    def __init__(
        self, *, queue: Queue, registry: Registry, state: WorkerState, info: WorkerInfo,
        config: QueueConfig, health_file: str, stopping: threading.Event,
        on_drain: Callable[[], None] = lambda: None,
    ) -> None:
        self.queue = queue
        self.registry = registry
        self.state = state
        self.info = info
        self.config = config
        self.health_file = health_file
        self.stopping = stopping  # warm shutdown requested: no more maintenance
        self.on_drain = on_drain  # called when a heartbeat finds a drain request
        self._sampled_bucket = -1
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop and wait for the thread (so no heartbeat lands after a deregistration)."""
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        config = self.config
        tick = min(config.heartbeat_interval_s, config.lease_s / 3, 1.0)
        next_heartbeat = next_maintenance = 0.0
        while not self._halt.is_set():
            now = time.monotonic()
            try:
                self.renew()
                if now >= next_heartbeat:
                    if self.registry.heartbeat(self.info, self.state.heartbeat_fields()):
                        self.on_drain()
                    touch_health_file(self.health_file)
                    next_heartbeat = now + config.heartbeat_interval_s
                if now >= next_maintenance and not self.stopping.is_set():
                    self._maintenance()
                    next_maintenance = now + MAINTENANCE_INTERVAL_S
                self.state.note_redis_up()
            except RedisUnavailable as exc:
                self.state.note_redis_down(exc)
            except Exception:
                logger.exception("heartbeat.error", extra={"worker": self.info.id})
            self._halt.wait(tick)

    def renew(self, held: list[Delivery] | None = None) -> list[Delivery]:
        """Renew the leases of ``held`` (default: every delivery in hand now). Returns, and
        logs as ``lease.lost``, the deliveries another owner took over; they leave the hand."""
        held = self.state.held() if held is None else held
        verdicts = self.queue.renew(held, consumer=self.info.id)
        lost = [
            d for d, verdict in zip(held, verdicts, strict=True)
            if verdict is Lease.TAKEN and self.state.drop_if_held(d)
        ]
        for d in lost:
            request_id = self.state.request_id_of(d.task_id)
            logger.warning("lease.lost", extra=log_fields(self.info.id, d, request_id))
        return lost

    def _maintenance(self) -> None:
        # One history sample per bucket for the whole cluster: each worker offers one per
        # bucket, the first to arrive writes it (history.lua).
        bucket = bucket_of(now_ms())
        if bucket != self._sampled_bucket:
            self._sampled_bucket = bucket
            record_sample(self.queue.client, self.config, self.registry.scripts)
        promoted = self.queue.promote_due()
        if promoted:
            logger.info("retries.promoted", extra={"worker": self.info.id, "count": promoted})
        for dead in self.registry.reap():
            logger.warning("worker.reaped", extra={"worker": self.info.id, "dead_worker": dead})
