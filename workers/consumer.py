"""One work thread: take tasks (expired leases first, then new deliveries, highest priority
first), run them and hand each outcome to the recorder.

The fetch size adapts: quick tasks (no-ops, tiny images) are taken several per round trip, up
to WORKER_PREFETCH; slow ones one at a time, so a worker never sits on work another could do.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

from distributed.errors import DistributedError, GroupMissing, InvalidMessage, RedisUnavailable
from distributed.messages import TaskMessage, TaskResult
from distributed.queue import Delivery, Queue
from distributed.retry import compute_backoff
from workers.outcomes import OutcomeRecorder, log_fields
from workers.sandbox import Sandbox
from workers.settings import WorkerSettings
from workers.state import WorkerState
from workers.tasks import Interrupted, error_kind, is_permanent, perform

logger = logging.getLogger("workers.runtime")

FETCH_BLOCK_MS = 1000
QUICK_TASK_S = 0.01
COMPLETION_FLUSH_S = 0.2

Done = tuple[Delivery, TaskResult, str | None]


class Consumer:
    """Its fetch size, fetch count and claim clock are its own: nothing here is shared."""

    def __init__(
        self, *, queue: Queue, state: WorkerState, recorder: OutcomeRecorder,
        settings: WorkerSettings, owner: str, stop: threading.Event, force: threading.Event,
        sandbox: Sandbox,
    ) -> None:
        self.queue = queue
        self.state = state
        self.recorder = recorder
        self.settings = settings
        self.worker_id = settings.worker_id
        self.owner = owner
        self.stop = stop
        self.force = force
        self.sandbox = sandbox
        self._fetch_no = itertools.count()
        self._fetch_size = 1
        self._last_claim = 0.0
        self._work_s = 0.0  # time spent running the tasks of the current batch

    def run(self) -> None:
        """Work until a warm shutdown is requested; the task in hand is finished first."""
        try:
            self._loop()
        finally:
            self.sandbox.close()

    def _loop(self) -> None:
        outage = 0
        while not self.stop.is_set():
            try:
                batch = self._take()
                outage = 0
            except DistributedError as exc:
                outage += 1
                self._on_fetch_error(exc)
                self.stop.wait(compute_backoff(min(outage, 6), base_s=0.1, max_s=2.0))
                continue
            if not batch:
                # Idle: nothing says the next tasks are quick. Start again at one task per
                # fetch, or a worker whose block on the doorbell had just timed out would
                # take a whole prefetch of slow tasks while the others stay idle.
                self._fetch_size = 1
                continue
            self._work_s = 0.0
            try:
                self._run_batch(batch)
            except Exception:
                # A bug or a refused Redis reply must not end this thread while the heartbeat
                # goes on: let the batch go, its leases expire and another worker takes it
                # over.
                logger.exception("batch.error", extra={"worker": self.worker_id})
                self.state.let_go(batch)
                continue
            self._adapt_fetch_size(self._work_s / len(batch))

    def _on_fetch_error(self, exc: DistributedError) -> None:
        if isinstance(exc, RedisUnavailable):
            self.state.note_redis_down(exc)
            return
        logger.warning("fetch.error", extra={"worker": self.worker_id, "error": str(exc)})
        if isinstance(exc, GroupMissing):  # the server lost its data (restart, no AOF)
            try:
                self.queue.ensure_groups()
            except RedisUnavailable as down:
                self.state.note_redis_down(down)

    def _adapt_fetch_size(self, seconds_per_task: float) -> None:
        # Judged on the tasks' own run time: Redis round trips say nothing about the work.
        if seconds_per_task < QUICK_TASK_S:
            self._fetch_size = min(self.settings.prefetch, self._fetch_size * 2)
        else:
            self._fetch_size = 1

    def _take(self) -> list[Delivery]:
        deliveries: list[Delivery] = []
        now = time.monotonic()
        if now - self._last_claim >= min(1.0, self.settings.queue.lease_s / 3):
            self._last_claim = now
            deliveries = self.queue.claim_expired(
                consumer=self.worker_id, owner=self.owner, count=self._fetch_size
            )
            for d in deliveries:
                logger.info("task.reclaimed", extra=log_fields(self.worker_id, d))
        if not deliveries:
            deliveries = self.queue.fetch(
                consumer=self.worker_id, owner=self.owner, count=self._fetch_size,
                fetch_no=next(self._fetch_no), block_ms=FETCH_BLOCK_MS,
            )
        self.state.hold(deliveries)
        return deliveries

    def _run_batch(self, batch: list[Delivery]) -> None:
        done: list[Done] = []
        first_done = 0.0
        for i, delivery in enumerate(batch):
            # The first task of a batch is the one in hand (already started in Redis): a warm
            # shutdown finishes it. Only the prefetched rest is handed back.
            if i > 0 and self.stop.is_set():
                self.recorder.release(batch[i:])
                break
            outcome = self._execute(delivery)
            if outcome is not None:
                done.append(outcome)
                first_done = first_done or time.monotonic()
            if done and time.monotonic() - first_done >= COMPLETION_FLUSH_S:
                self.recorder.complete(done)
                done, first_done = [], 0.0
        self.recorder.complete(done)

    def _execute(self, d: Delivery) -> Done | None:
        """Run one task. Returns its result, or None when its failure was recorded (or a cold
        shutdown cut it short)."""
        started = time.perf_counter()
        try:
            message = TaskMessage.for_task(d.task_id, d.payload)
        except InvalidMessage as exc:
            # Permanent: a payload that fails validation (unknown version or field, a path,
            # another task's ids) never runs.
            self.recorder.fail(d, kind="invalid_payload", message=str(exc), permanent=True,
                               duration_ms=0.0)
            return None
        request_id = message.request_id
        self.state.begin(d.task_id, request_id)
        logger.debug("task.start", extra=log_fields(self.worker_id, d, request_id))
        try:
            fields = perform(message, d.payload, settings=self.settings, sandbox=self.sandbox,
                             stop=self.force)
            # Counted before the outcome and unfenced: the bytes are on disk whoever records
            # the result (a redelivered task's rewrite adds nothing: Storage.write_key).
            self.recorder.charge(d, message.tenant, int(fields.pop("stored_bytes", 0) or 0))
            fields["timings"] = tuple(fields.get("timings", ()))
            result = TaskResult(duration_ms=_ms_since(started), worker=self.worker_id,
                                attempt=d.attempt, **fields)
            return d, result, request_id
        except Interrupted:
            return None
        except Exception as exc:
            self.recorder.fail(
                d, kind=error_kind(exc), message=str(exc) or type(exc).__name__,
                permanent=is_permanent(exc), duration_ms=_ms_since(started),
                request_id=request_id,
            )
            return None
        finally:
            self.state.end()
            self._work_s += time.perf_counter() - started


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
