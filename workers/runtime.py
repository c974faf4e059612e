"""The worker process: a plain, explicit lifecycle.

Threads: the main thread waits for signals; ``concurrency`` work threads each run a
:class:`~workers.consumer.Consumer` (fetch, run, record through the
:class:`~workers.outcomes.OutcomeRecorder`); one :class:`~workers.leases.LeaseKeeper` thread
renews the leases of the tasks in hand, heartbeats into the registry and runs the shared
maintenance. What they share lives in a :class:`~workers.state.WorkerState`, under its lock.

Signals only set flags: the first SIGTERM/SIGINT is a warm shutdown (stop fetching, finish the
task in hand within the grace period, hand back prefetched tasks, deregister, exit 0); a second
one is a cold shutdown (exit at once; the task in hand is redelivered when its lease expires).
The task processes ignore both (``workers.sandbox``): a signal to the whole process group is
the worker's alone to act on, and the worker stops its task processes itself on the way out.

A drain (``POST /api/workers/<id>/drain/``, seen by the lease keeper in its heartbeat) is a warm
shutdown asked through Redis: the task in hand is finished (bounded by its time limit rather
than the grace period), prefetched tasks are handed back, the worker deregisters as
``drained`` and exits 0, so a supervisor restarting on unexpected exits leaves it stopped.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import socket
import threading
import time
import uuid
from typing import Any

from common import __version__
from distributed.clock import now_ms
from distributed.connection import connect
from distributed.errors import RedisUnavailable
from distributed.queue import Queue
from distributed.registry import Registry, WorkerInfo
from distributed.retry import compute_backoff
from distributed.usage import StorageUsage
from imaging.filters import FILTERS
from workers.consumer import Consumer
from workers.leases import LeaseKeeper, touch_health_file
from workers.outcomes import OutcomeRecorder
from workers.sandbox import Sandbox
from workers.settings import WorkerSettings
from workers.state import Status, WorkerState

logger = logging.getLogger("workers.runtime")

__all__ = ["ExitCode", "Status", "Worker"]


class ExitCode(enum.IntEnum):
    OK = 0  # warm shutdown, every task in hand finished (or stopped before joining)
    GRACE_EXPIRED = 3  # warm shutdown, but a task was still running after the grace period
    COLD_SHUTDOWN = 4  # second signal: stopped at once


class Worker:
    def __init__(self, settings: WorkerSettings) -> None:
        """Raises :class:`RedisUnavailable` when REDIS_URL is not set."""
        self.settings = settings
        self.id = settings.worker_id
        self.owner = f"{self.id}/{uuid.uuid4().hex[:12]}"
        client = connect(settings.queue.redis_url)
        self.queue = Queue(client, settings.queue)
        self.registry = Registry(client, settings.queue)
        self.state = WorkerState(self.id)
        self.info = WorkerInfo(
            id=self.id, hostname=socket.gethostname(), pid=os.getpid(), version=__version__,
            concurrency=settings.concurrency, filters=tuple(FILTERS), started_at_ms=now_ms(),
            instance=self.owner,
        )
        self._stop = threading.Event()
        self._force = threading.Event()
        self._signalled = threading.Event()
        self._draining = threading.Event()
        self._sandboxes: list[Sandbox] = []
        self.recorder = OutcomeRecorder(
            queue=self.queue, state=self.state, config=settings.queue, force=self._force,
            registry=self.registry,
            usage=StorageUsage(client, settings.queue, self.queue.scripts),
        )
        self.leases = LeaseKeeper(
            queue=self.queue, registry=self.registry, state=self.state, info=self.info,
            config=settings.queue, health_file=settings.health_file, stopping=self._stop,
            on_drain=self.request_drain,
        )

    # -- signals -------------------------------------------------------------------------

    def request_stop(self, signum: int | None = None, _frame: Any = None) -> None:
        """First call: warm shutdown (also while draining). Second call: cold shutdown."""
        if self._signalled.is_set():
            self._force.set()
        else:
            self._signalled.set()
            self._stop.set()

    def request_drain(self) -> None:
        """A drain request (from the heartbeat): a warm shutdown that exits 0 once the task
        in hand is finished."""
        if self._stop.is_set():
            return
        self._draining.set()
        self.state.set_status(Status.DRAINING)
        logger.info("worker.drain_requested", extra={"worker": self.id})
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
            return ExitCode.OK
        threads = [
            threading.Thread(target=self._consumer(i).run, name=f"work-{i}", daemon=True)
            for i in range(self.settings.concurrency)
        ]
        code = ExitCode.GRACE_EXPIRED
        self.leases.start()
        try:
            for thread in threads:
                thread.start()
            while not self._stop.wait(0.5):  # a timed wait: signal handlers run promptly
                pass
            code = self._drain(threads)
        finally:
            self._stop_task_processes(threads)
            self.leases.stop()
            self._leave(code)
        return code

    def _consumer(self, number: int) -> Consumer:
        sandbox = Sandbox(memory_limit_mb=self.settings.memory_limit_mb,
                          name=f"{self.id}-{number}")
        self._sandboxes.append(sandbox)
        return Consumer(
            queue=self.queue, state=self.state, recorder=self.recorder, settings=self.settings,
            owner=self.owner, stop=self._stop, force=self._force, sandbox=sandbox,
        )

    def _join_cluster(self) -> bool:
        """Connect (retrying with backoff while Redis is unreachable) and register; False if
        a signal came first."""
        attempt = 0
        while not self._stop.is_set():
            try:
                self.queue.ensure_groups()
                self.registry.register(self.info)
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
        self.state.set_status(Status.IDLE)
        touch_health_file(self.settings.health_file)
        s = self.settings
        logger.info("worker.start", extra={
            "worker": self.id, "pid": os.getpid(), "concurrency": s.concurrency,
            "prefetch": s.prefetch, "lease_s": s.queue.lease_s,
            "heartbeat_s": s.queue.heartbeat_interval_s,
        })
        return True

    def _drain(self, threads: list[threading.Thread]) -> ExitCode:
        """Wait (at most the grace period) for the work threads to finish their task in hand.
        A second signal meanwhile exits the process at once."""
        s = self.settings
        grace_s = s.shutdown_grace_s
        if self._draining.is_set() and not self._signalled.is_set():
            # No hurry: the task in hand is stopped at its time limit anyway.
            grace_s = max(grace_s, s.task_time_limit_s + 5)
        else:
            self.state.set_status(Status.STOPPING)
        logger.info("worker.stopping", extra={
            "worker": self.id, "in_hand": self.state.totals()[2], "grace_s": grace_s,
            "drain": self._draining.is_set(),
        })
        deadline = time.monotonic() + grace_s
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            if self._force.wait(0.05):
                logger.warning("worker.cold_shutdown",
                               extra={"worker": self.id, "in_hand": self.state.totals()[2]})
                logging.shutdown()
                os._exit(ExitCode.COLD_SHUTDOWN)
        return ExitCode.GRACE_EXPIRED if any(t.is_alive() for t in threads) else ExitCode.OK

    def _stop_task_processes(self, threads: list[threading.Thread]) -> None:
        """On the way out, kill every task process still running. Work threads that finished
        closed theirs; a task still in hand (the grace period ran out) is abandoned like at a
        cold shutdown: nothing is recorded and it is redelivered when its lease expires.
        Without this, the exit would wait for a task process that ignores SIGTERM."""
        if any(t.is_alive() for t in threads):
            self._force.set()  # first: the thread then reads the kill as a cancellation
        for sandbox in self._sandboxes:
            sandbox.abandon()

    def _leave(self, code: ExitCode) -> None:
        try:
            self.registry.deregister(
                self.id, state="drained" if self._draining.is_set() else "stopped")
        except RedisUnavailable as exc:
            logger.warning("worker.deregister_failed", extra={"worker": self.id, "error": str(exc)})
        completed, failed, _ = self.state.totals()
        logger.info("worker.stop", extra={
            "worker": self.id, "exit_code": int(code), "completed": completed, "failed": failed,
        })
