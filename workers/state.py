"""What the threads of a worker share: its status, the deliveries in hand, the tasks being
run and the counters. Every write happens under one lock; readers get copies."""

from __future__ import annotations

import enum
import logging
import threading
from collections import deque
from typing import Any

from distributed.clock import now_ms
from distributed.queue import Delivery

logger = logging.getLogger("workers.runtime")

RECENT_WINDOW = 20


class Status(enum.Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"
    DRAINING = "draining"  # asked through the API: finish the task in hand, then leave


class WorkerState:
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self._lock = threading.Lock()
        self._status = Status.STARTING
        self._in_hand: dict[str, Delivery] = {}
        self._running: dict[int, tuple[str, str | None]] = {}  # thread -> (task, request id)
        self._completed = 0
        self._failed = 0
        self._recent: deque[bool] = deque(maxlen=RECENT_WINDOW)
        self._redis_down = False

    # -- status --------------------------------------------------------------------------

    @property
    def status(self) -> Status:
        return self._status

    def set_status(self, status: Status) -> None:
        with self._lock:
            self._status = status

    # -- deliveries in hand (their leases are renewed) ---------------------------------------

    def hold(self, deliveries: list[Delivery]) -> None:
        with self._lock:
            for d in deliveries:
                self._in_hand[d.task_id] = d

    def let_go(self, deliveries: list[Delivery]) -> None:
        """Stop renewing these (their outcome is about to be recorded, or they go back)."""
        with self._lock:
            for d in deliveries:
                if self._in_hand.get(d.task_id) == d:
                    del self._in_hand[d.task_id]

    def drop_if_held(self, d: Delivery) -> bool:
        """Let go of ``d`` if this very delivery is still in hand; True if it was."""
        with self._lock:
            if self._in_hand.get(d.task_id) != d:
                return False
            del self._in_hand[d.task_id]
            return True

    def held(self) -> list[Delivery]:
        with self._lock:
            return list(self._in_hand.values())

    # -- tasks being run -------------------------------------------------------------------

    def begin(self, task_id: str, request_id: str | None) -> None:
        with self._lock:
            self._running[threading.get_ident()] = (task_id, request_id)
            if self._status is Status.IDLE:
                self._status = Status.BUSY

    def end(self) -> None:
        with self._lock:
            self._running.pop(threading.get_ident(), None)
            if not self._running and self._status is Status.BUSY:
                self._status = Status.IDLE

    def request_id_of(self, task_id: str) -> str | None:
        with self._lock:
            return next((r for t, r in self._running.values() if t == task_id), None)

    # -- counters --------------------------------------------------------------------------

    def count(self, *, completed: int = 0, failed: int = 0) -> None:
        with self._lock:
            self._completed += completed
            self._failed += failed
            self._recent.extend([True] * completed + [False] * failed)

    def totals(self) -> tuple[int, int, int]:
        """(completed, failed, deliveries in hand)."""
        with self._lock:
            return self._completed, self._failed, len(self._in_hand)

    def heartbeat_fields(self) -> dict[str, Any]:
        with self._lock:
            current = ",".join(sorted(task for task, _ in self._running.values()))
            recent = list(self._recent)
            return {
                "state": self._status.value,
                "current_task": current,
                "tasks_completed": self._completed,
                "tasks_failed": self._failed,
                "recent_total": len(recent),
                "recent_failed": recent.count(False),
                "last_heartbeat_ms": now_ms(),
            }

    # -- Redis reachability (logged once per outage) -------------------------------------------

    def note_redis_down(self, exc: Exception) -> None:
        with self._lock:
            first, self._redis_down = not self._redis_down, True
        if first:
            logger.warning("redis.down", extra={"worker": self.worker_id, "error": str(exc)})

    def note_redis_up(self) -> None:
        with self._lock:
            back, self._redis_down = self._redis_down, False
        if back:
            logger.info("redis.up", extra={"worker": self.worker_id})
