"""The worker process: a plain, explicit loop.

Threads: the main thread waits for signals; ``concurrency`` work threads each fetch and run
tasks; one heartbeat thread renews the leases of the tasks in hand, heartbeats into the registry
and runs the shared maintenance (promote due retries, reap dead workers). Expired leases are
reclaimed by the work threads themselves before they fetch new work.

Signals only set flags: the first SIGTERM/SIGINT is a warm shutdown (stop fetching, finish the
task in hand within the grace period, hand back prefetched tasks, deregister, exit 0); a second
one is a cold shutdown (exit at once; the task in hand is redelivered when its lease expires).
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

import redis

from common import __version__
from distributed.connection import connect
from distributed.errors import RedisUnavailable
from distributed.queue import Delivery, Queue, now_ms
from distributed.registry import Registry, WorkerInfo
from distributed.retry import compute_backoff
from imaging.filters import FILTERS
from workers.settings import WorkerSettings
from workers.tasks import PERMANENT_ERRORS, error_kind, perform

logger = logging.getLogger("workers.runtime")

EXIT_OK = 0
EXIT_GRACE_EXPIRED = 3
EXIT_COLD_SHUTDOWN = 4

FETCH_BLOCK_MS = 1000
# Adaptive fetch size: quick tasks (no-ops, tiny images) are taken several per round trip, up to
# WORKER_PREFETCH; slow ones one at a time, so a worker never sits on work another could do.
QUICK_TASK_S = 0.01
COMPLETION_FLUSH_S = 0.2
RECENT_WINDOW = 20


class WorkerState(enum.Enum):
    STARTING = "starting"
    IDLE = "idle"
    BUSY = "busy"
    STOPPING = "stopping"


class Worker:
    def __init__(self, settings: WorkerSettings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.id = settings.worker_id
        self.owner = f"{self.id}/{uuid.uuid4().hex[:12]}"
        self.client = client or connect(settings.queue.redis_url)
        self.queue = Queue(self.client, settings.queue)
        self.registry = Registry(self.client, settings.queue)
        self.state = WorkerState.STARTING
        self._stop = threading.Event()
        self._force = threading.Event()
        self._heartbeat_stop = threading.Event()
        self._lock = threading.Lock()
        self._in_hand: dict[str, Delivery] = {}
        self._current: dict[int, str] = {}
        self._completed = 0
        self._failed = 0
        self._recent: deque[bool] = deque(maxlen=RECENT_WINDOW)
        self._fetch_no = itertools.count()
        self._last_claim = 0.0
        self._fetch_size = 1
        self._redis_down = False
        self._started_at_ms = now_ms()

    @property
    def info(self) -> WorkerInfo:
        return WorkerInfo(
            id=self.id, hostname=socket.gethostname(), pid=os.getpid(), version=__version__,
            concurrency=self.settings.concurrency, filters=tuple(FILTERS),
            started_at_ms=self._started_at_ms, instance=self.owner,
        )

    # -- signals -------------------------------------------------------------------------

    def request_stop(self, signum: int | None = None, _frame: Any = None) -> None:
        """First call: warm shutdown. Second call: cold shutdown."""
        if self._stop.is_set():
            self._force.set()
        else:
            self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> int:
        """Run until a signal; returns the process exit code."""
        if threading.current_thread() is threading.main_thread():
            self.install_signal_handlers()
        if not self._join_cluster():
            return EXIT_OK
        workers = [
            threading.Thread(target=self._work_loop, name=f"work-{i}", daemon=True)
            for i in range(self.settings.concurrency)
        ]
        heart = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        heart.start()
        for thread in workers:
            thread.start()
        try:
            while not self._stop.wait(0.2):
                pass
            return self._shutdown(workers)
        finally:
            self._heartbeat_stop.set()

    def _join_cluster(self) -> bool:
        """Connect (retrying with backoff while Redis is unreachable) and register."""
        attempt = 0
        info = WorkerInfo(
            id=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            concurrency=self.settings.concurrency,
            filters=tuple(FILTERS),
            started_at_ms=self._started_at_ms,
            instance=self.owner,
        )
        while not self._stop.is_set():
            try:
                self.queue.ensure_groups()
                self.registry.register(info)
                break
            except RedisUnavailable as exc:
                attempt += 1
                delay = compute_backoff(min(attempt, 6), base_s=0.2, max_s=5.0)
                logger.warning(
                    "redis.unavailable",
                    extra={"worker": self.id, "error": str(exc), "retry_in_s": round(delay, 2)},
                )
                self._stop.wait(delay)
        else:
            return False
        self.state = WorkerState.IDLE
        self._touch_health_file()
        logger.info(
            "worker.start",
            extra={
                "worker": self.id,
                "pid": os.getpid(),
                "concurrency": self.settings.concurrency,
                "prefetch": self.settings.prefetch,
                "lease_s": self.settings.queue.lease_s,
                "heartbeat_s": self.settings.queue.heartbeat_interval_s,
            },
        )
        return True

    def _shutdown(self, workers: list[threading.Thread]) -> int:
        self.state = WorkerState.STOPPING
        logger.info(
            "worker.stopping",
            extra={
                "worker": self.id,
                "in_hand": len(self._in_hand),
                "grace_s": self.settings.shutdown_grace_s,
            },
        )
        deadline = time.monotonic() + self.settings.shutdown_grace_s
        while any(t.is_alive() for t in workers):
            if self._force.is_set():
                logger.warning(
                    "worker.cold_shutdown", extra={"worker": self.id, "in_hand": len(self._in_hand)}
                )
                logging.shutdown()
                os._exit(EXIT_COLD_SHUTDOWN)
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        code = EXIT_OK if not any(t.is_alive() for t in workers) else EXIT_GRACE_EXPIRED
        self._heartbeat_stop.set()
        try:
            self.registry.deregister(self.id)
        except RedisUnavailable as exc:
            logger.warning("worker.deregister_failed", extra={"worker": self.id, "error": str(exc)})
        logger.info(
            "worker.stop",
            extra={
                "worker": self.id,
                "exit_code": code,
                "completed": self._completed,
                "failed": self._failed,
            },
        )
        return code

    # -- the work loop -------------------------------------------------------------------

    def _work_loop(self) -> None:
        outage = 0
        while not self._stop.is_set():
            try:
                batch = self._take()
                outage = 0
            except RedisUnavailable as exc:
                outage += 1
                self._note_redis_down(exc)
                self._stop.wait(compute_backoff(min(outage, 6), base_s=0.1, max_s=2.0))
                continue
            except redis.ResponseError as exc:
                # NOGROUP: the server lost its data (restarted without persistence).
                outage += 1
                logger.warning("fetch.error", extra={"worker": self.id, "error": str(exc)})
                self._stop.wait(compute_backoff(min(outage, 6), base_s=0.1, max_s=2.0))
                if "NOGROUP" in str(exc):
                    self._ignore_outage(self.queue.ensure_groups)
                continue
            if batch:
                started = time.monotonic()
                self._run_batch(batch)
                self._adapt_fetch_size((time.monotonic() - started) / len(batch))

    def _adapt_fetch_size(self, seconds_per_task: float) -> None:
        if seconds_per_task < QUICK_TASK_S:
            self._fetch_size = min(self.settings.prefetch, self._fetch_size * 2)
        else:
            self._fetch_size = 1

    def _take(self) -> list[Delivery]:
        s = self.settings
        deliveries: list[Delivery] = []
        now = time.monotonic()
        if now - self._last_claim >= min(1.0, s.queue.lease_s / 3):
            self._last_claim = now
            deliveries = self.queue.claim_expired(
                consumer=self.id, owner=self.owner, count=self._fetch_size
            )
            for d in deliveries:
                logger.info(
                    "task.reclaimed",
                    extra={
                        "worker": self.id,
                        "job": d.job_id,
                        "task": d.task_id,
                        "attempt": d.attempt,
                    },
                )
        if not deliveries:
            deliveries = self.queue.fetch(
                consumer=self.id,
                owner=self.owner,
                count=self._fetch_size,
                fetch_no=next(self._fetch_no),
                block_ms=FETCH_BLOCK_MS,
            )
        with self._lock:
            for d in deliveries:
                self._in_hand[d.task_id] = d
        return deliveries

    def _run_batch(self, batch: list[Delivery]) -> None:
        done: list[tuple[Delivery, dict[str, Any]]] = []
        first_done = 0.0
        for i, delivery in enumerate(batch):
            # The first task of a batch is the one in hand (already started in Redis): a warm
            # shutdown finishes it. Only the prefetched rest is handed back.
            if i > 0 and self._stop.is_set():
                self._release(batch[i:])
                break
            result = self._execute(delivery)
            if result is not None:
                done.append((delivery, result))
                first_done = first_done or time.monotonic()
            if done and time.monotonic() - first_done >= COMPLETION_FLUSH_S:
                self._record_completions(done)
                done, first_done = [], 0.0
        if done:
            self._record_completions(done)

    def _execute(self, d: Delivery) -> dict[str, Any] | None:
        """Run one task. Returns its result, or None when the failure was recorded."""
        ident = threading.get_ident()
        with self._lock:
            self._current[ident] = d.task_id
        self.state = WorkerState.BUSY
        started = time.perf_counter()
        extra = {"worker": self.id, "job": d.job_id, "task": d.task_id, "attempt": d.attempt}
        logger.debug("task.start", extra=extra)
        try:
            result = perform(
                d.payload,
                media_root=self.settings.media_root,
                max_pixels=self.settings.max_image_pixels,
                stop=self._force,
            )
            result["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
            result["worker"] = self.id
            result["attempt"] = d.attempt
            return result
        except PERMANENT_ERRORS as exc:
            self._record_failure(d, exc, permanent=True, started=started)
        except Exception as exc:
            self._record_failure(d, exc, permanent=False, started=started)
        finally:
            with self._lock:
                self._current.pop(ident, None)
                if not self._current:
                    self.state = WorkerState.IDLE
        return None

    def _record_completions(self, items: list[tuple[Delivery, dict[str, Any]]]) -> None:
        recorded = self._until_recorded(lambda: self.queue.complete_many(items))
        with self._lock:
            for (d, _), ok in zip(items, recorded or [False] * len(items), strict=True):
                self._in_hand.pop(d.task_id, None)
                if ok:
                    self._completed += 1
                    self._recent.append(True)
        for (d, result), ok in zip(items, recorded or [False] * len(items), strict=True):
            extra = {
                "worker": self.id,
                "job": d.job_id,
                "task": d.task_id,
                "attempt": d.attempt,
                "duration_ms": result["duration_ms"],
            }
            if ok:
                logger.info("task.done", extra=extra)
            else:
                logger.warning("task.fenced", extra=extra)

    def _record_failure(
        self, d: Delivery, exc: BaseException, *, permanent: bool, started: float
    ) -> None:
        q = self.settings.queue
        delay = compute_backoff(
            d.attempt, base_s=q.retry_backoff_base_s, max_s=q.retry_backoff_max_s
        )
        verdict = self._until_recorded(
            lambda: self.queue.fail(
                d,
                kind=error_kind(exc),
                message=str(exc) or type(exc).__name__,
                permanent=permanent,
                retry_in_s=delay,
            )
        )
        with self._lock:
            self._in_hand.pop(d.task_id, None)
            if verdict in ("retry", "dead"):
                self._failed += 1
                self._recent.append(False)
        extra = {
            "worker": self.id,
            "job": d.job_id,
            "task": d.task_id,
            "attempt": d.attempt,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "error": f"{error_kind(exc)}: {exc}",
            "permanent": permanent,
        }
        if verdict == "retry":
            extra["retry_in_s"] = round(delay, 2)
            logger.warning("task.retry", extra=extra)
        elif verdict == "dead":
            logger.error("task.dead_lettered", extra=extra)
        else:
            logger.warning("task.fenced", extra=extra)

    def _until_recorded(self, record: Any) -> Any:
        """An outcome must land: retry through a Redis outage (cold shutdown aside). If the
        lease expires meanwhile, the task is redone elsewhere and this outcome is fenced."""
        attempt = 0
        while not self._force.is_set():
            try:
                return record()
            except RedisUnavailable as exc:
                attempt += 1
                self._note_redis_down(exc)
                time.sleep(compute_backoff(min(attempt, 6), base_s=0.1, max_s=2.0))
        return None

    def _ignore_outage(self, action: Any) -> None:
        try:
            action()
        except RedisUnavailable as exc:
            self._note_redis_down(exc)

    def _release(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            try:
                self.queue.release(d)
                logger.info(
                    "task.released", extra={"worker": self.id, "job": d.job_id, "task": d.task_id}
                )
            except RedisUnavailable:
                pass  # its lease will expire and it will be reclaimed
            with self._lock:
                self._in_hand.pop(d.task_id, None)

    # -- heartbeat, leases, maintenance ----------------------------------------------------

    def _heartbeat_loop(self) -> None:
        q = self.settings.queue
        tick = min(q.heartbeat_interval_s, q.lease_s / 3, 1.0)
        next_heartbeat = 0.0
        next_maintenance = 0.0
        while not self._heartbeat_stop.is_set():
            now = time.monotonic()
            try:
                self._renew_leases()
                if now >= next_heartbeat:
                    self.registry.heartbeat(self.info, self._heartbeat_fields())
                    self._touch_health_file()
                    next_heartbeat = now + q.heartbeat_interval_s
                if now >= next_maintenance and not self._stop.is_set():
                    self._maintenance()
                    next_maintenance = now + 1.0
                self._note_redis_up()
            except RedisUnavailable as exc:
                self._note_redis_down(exc)
            except Exception:
                logger.exception("heartbeat.error", extra={"worker": self.id})
            self._heartbeat_stop.wait(tick)

    def _renew_leases(self) -> None:
        with self._lock:
            held = list(self._in_hand.values())
        renewed = self.queue.renew(held, consumer=self.id)
        for d, ok in zip(held, renewed, strict=True):
            if not ok:
                with self._lock:
                    lost = self._in_hand.pop(d.task_id, None)
                if lost is not None:
                    logger.warning(
                        "lease.lost",
                        extra={
                            "worker": self.id,
                            "job": d.job_id,
                            "task": d.task_id,
                            "attempt": d.attempt,
                        },
                    )

    def _maintenance(self) -> None:
        promoted = self.queue.promote_due()
        if promoted:
            logger.info("retries.promoted", extra={"worker": self.id, "count": promoted})
        for dead in self.registry.reap():
            logger.warning("worker.reaped", extra={"worker": self.id, "dead_worker": dead})

    def _heartbeat_fields(self) -> dict[str, Any]:
        with self._lock:
            current = ",".join(sorted(self._current.values()))
            recent = list(self._recent)
            completed, failed = self._completed, self._failed
        return {
            "state": self.state.value,
            "current_task": current,
            "tasks_completed": completed,
            "tasks_failed": failed,
            "recent_total": len(recent),
            "recent_failed": recent.count(False),
            "last_heartbeat_ms": now_ms(),
        }

    def _touch_health_file(self) -> None:
        if self.settings.health_file:
            path = Path(self.settings.health_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

    def _note_redis_down(self, exc: Exception) -> None:
        if not self._redis_down:
            self._redis_down = True
            logger.warning("redis.down", extra={"worker": self.id, "error": str(exc)})

    def _note_redis_up(self) -> None:
        if self._redis_down:
            self._redis_down = False
            logger.info("redis.up", extra={"worker": self.id})
