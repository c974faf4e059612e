"""The task queue on Redis Streams: submit, fetch, lease renewal and reclaim, outcome.

Every state change is one Lua script (atomic); see keys.py for the data layout. A task is in
exactly one state: pending, running, delayed, completed, dead or cancelled, and the counters
of ``{p}:stats`` move with it in the same script, so accepted = sum of the states at any time.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from distributed.clock import now_ms
from distributed.config import QueueConfig
from distributed.errors import (
    IdempotencyKeyReused,
    JobNotFinished,
    NotFound,
    QueueFull,
    TenantQueueFull,
    translate_redis_errors,
)
from distributed.ids import is_job_id, job_id_of, task_id_for
from distributed.keys import (
    ANONYMOUS,
    GROUP,
    PRIORITIES,
    TPUT_BUCKET_S,
    TPUT_TTL_S,
    is_tenant,
)
from distributed.messages import TaskMessage, TaskResult
from distributed.metrics import add_durations
from distributed.scripts import Scripts


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Delivery:
    """A task in a worker's hands. ``attempt`` + ``owner`` are the fencing token; ``payload``
    is the task message as stored (JSON text), parsed by the worker."""

    task_id: str
    stream: str
    msg_id: str
    attempt: int
    owner: str
    priority: str
    payload: str

    @property
    def job_id(self) -> str:
        return job_id_of(self.task_id)


class Lease(enum.Enum):
    """What renewing a delivery's lease found in Redis."""

    RENEWED = "renewed"  # still ours: the lease runs again from now
    GONE = "gone"  # the task is no longer running (finished, handed back, expired)
    TAKEN = "taken"  # running under another owner or attempt: our lease was lost


@dataclass(frozen=True)
class Submitted:
    job_id: str
    duplicate: bool


def stream_order(fetch_no: int) -> tuple[str, ...]:
    """Priorities in the order a fetch tries them. Mostly strict (high, normal, low); one
    fetch in ten puts normal first and one in ten low first, so no level starves."""
    if fetch_no % 10 == 9:
        return ("low", "normal", "high")
    if fetch_no % 5 == 4:
        return ("normal", "high", "low")
    return PRIORITIES


class Queue:
    def __init__(self, client: redis.Redis, config: QueueConfig) -> None:
        self.client = client
        self.config = config
        self.keys = config.keys
        self.scripts = Scripts(client)
        self._groups_ready = False

    # -- setup ---------------------------------------------------------------------------

    def ensure_groups(self) -> None:
        """Create the streams and the consumer group if missing (idempotent)."""
        with translate_redis_errors():
            for stream in self.keys.queues():
                try:
                    self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
        self._groups_ready = True

    def ping(self) -> None:
        """Round trip to Redis; raises :class:`RedisUnavailable` when it does not answer."""
        with translate_redis_errors():
            self.client.ping()

    # -- submitting ----------------------------------------------------------------------

    def submit(
        self,
        *,
        job_id: str,
        priority: str,
        messages: Sequence[TaskMessage],
        job_fields: dict[str, Any],
        idempotency_key: str | None = None,
        fingerprint: str = "",
        tenant: str = ANONYMOUS,
    ) -> Submitted:
        """Enqueue one task per message (message ``i`` is task ``<job_id>.<i>``), atomically.

        With an ``idempotency_key`` already used: the first job (``duplicate=True``) when its
        ``fingerprint`` matches, else :class:`IdempotencyKeyReused`. Raises
        :class:`QueueFull` over the cap, :class:`TenantQueueFull` over ``tenant``'s cap.
        ``tenant`` owns the job: it is stored in the job and task hashes (field ``tenant``),
        the job is indexed in the tenant's job index too, and its tasks wait in the tenant's
        list (the fair share, fetch.lua)."""
        if not is_tenant(tenant):
            raise ValueError(f"{tenant!r} is not a tenant id")
        if not is_job_id(job_id):
            raise ValueError(f"{job_id!r} is not a job id")
        if not messages:
            raise ValueError("a job needs at least one task")
        for index, message in enumerate(messages):
            if (message.job_id, message.index) != (job_id, index):
                raise ValueError(f"message {index} is for task {message.task_id}")
        k = self.keys
        task_ids = [task_id_for(job_id, i) for i in range(len(messages))]
        keys = [
            k.stats(), k.job(job_id), k.job_tasks(job_id), k.tenant_queue(priority, tenant),
            k.idempotency(idempotency_key or ""), k.jobs(), k.tenants_open(),
            k.tenant_ring(priority), k.doorbell(), k.jobs(tenant), *(k.task(t) for t in task_ids),
        ]
        args: list[Any] = [
            now_ms(), self.config.max_queued_tasks, "1" if idempotency_key else "0",
            self.config.idempotency_ttl_s, job_id, priority,
            json.dumps({**job_fields, "tenant": tenant}), fingerprint,
            tenant, self.config.tenant_max_open_tasks,
        ]
        for task_id, message in zip(task_ids, messages, strict=True):
            args += [task_id, message.to_json(), message.image_id or ""]
        if not self._groups_ready:
            self.ensure_groups()
        with translate_redis_errors():
            status, value = self.scripts["enqueue"](keys=keys, args=args)
        status, value = _s(status), _s(value)
        if status == "full":
            raise QueueFull(int(value), self.config.max_queued_tasks, self._retry_after_s())
        if status == "tenant_full":
            raise TenantQueueFull(
                int(value), self.config.tenant_max_open_tasks, self._retry_after_s()
            )
        if status == "reused":
            raise IdempotencyKeyReused(_reused_message())
        return Submitted(job_id=value, duplicate=status == "dup")

    def find_idempotent(self, key: str, fingerprint: str) -> str | None:
        """The job first submitted with ``key``, or None if the key is unused (or expired).
        Raises :class:`IdempotencyKeyReused` when that job came from another request."""
        with translate_redis_errors():
            raw = self.client.get(self.keys.idempotency(key))
        if raw is None:
            return None
        job_id, _, stored = _s(raw).partition(" ")
        if stored and fingerprint and stored != fingerprint:
            raise IdempotencyKeyReused(_reused_message())
        return job_id

    def _retry_after_s(self) -> int:
        return max(1, int(self.config.heartbeat_interval_s * 2))

    # -- taking work -----------------------------------------------------------------------

    def fetch(
        self, *, consumer: str, owner: str, count: int, fetch_no: int = 0, block_ms: int = 0
    ) -> list[Delivery]:
        """New deliveries, highest priority first and round-robin across tenants within a
        priority. With ``block_ms`` and nothing queued, waits up to that long for a submission
        (the doorbell) and tries once more."""
        order = stream_order(fetch_no)
        with translate_redis_errors():
            entries, bell = self.take_entries(consumer=consumer, count=count, order=order)
            if not entries and block_ms > 0 and self.client.xread(
                {self.keys.doorbell(): bell}, count=1, block=block_ms
            ):
                # Woken from idle: one task, as the blocking read took before the fair
                # share. Every idle worker wakes at once; taking `count` here would let the
                # first one prefetch a whole slow batch while the others stay idle.
                entries, _ = self.take_entries(consumer=consumer, count=1, order=order)
            return self._start(entries, consumer=consumer, owner=owner)

    def take_entries(
        self, *, consumer: str, count: int, order: Sequence[str] = PRIORITIES
    ) -> tuple[list[Any], str]:
        """The first half of a fetch (fetch.lua): up to ``count`` stream entries delivered to
        ``consumer``, not yet started, and the doorbell id to block on when there were none."""
        k = self.keys
        keys = [*(k.queue(p) for p in order), k.doorbell()]
        entries, bell = self.scripts["fetch"](
            keys=keys, args=[GROUP, consumer, count, k.tenant_base(), k.task(""), *order]
        )
        return entries, _s(bell)

    def claim_expired(self, *, consumer: str, owner: str, count: int = 10) -> list[Delivery]:
        """Take over deliveries whose lease expired (their worker died or hangs)."""
        with translate_redis_errors():
            entries = self.scripts["claim_expired"](
                keys=self.keys.queues(), args=[GROUP, consumer, self.config.lease_ms, count]
            )
            return self._start(entries, consumer=consumer, owner=owner)

    def _start(self, entries: list[Any], *, consumer: str, owner: str) -> list[Delivery]:
        if not entries:
            return []
        k = self.keys
        keys = [k.stats(), k.dead(), k.tenants_open(), k.callbacks()]
        args: list[Any] = [
            now_ms(), owner, consumer, GROUP, self.config.max_attempts, self.config.job_ttl_s,
        ]
        parsed = []
        for stream, msg_id, task_id in entries:
            stream, msg_id, task_id = _s(stream), _s(msg_id), _s(task_id)
            job_id = job_id_of(task_id)
            keys += [k.task(task_id), stream, k.job(job_id), k.job_tasks(job_id)]
            args += [msg_id, task_id]
            parsed.append((stream, msg_id, task_id))
        with translate_redis_errors():
            results = self.scripts["start"](keys=keys, args=args)
        out = []
        for (stream, msg_id, task_id), (verdict, attempt, payload, priority) in zip(
            parsed, results, strict=True
        ):
            if _s(verdict) == "run":
                out.append(Delivery(
                    task_id, stream, msg_id, int(attempt), owner, _s(priority), _s(payload)
                ))
        return out

    # -- while working -------------------------------------------------------------------

    def renew(self, deliveries: Sequence[Delivery], *, consumer: str) -> list[Lease]:
        """Reset the lease of each delivery in hand; one :class:`Lease` verdict each."""
        if not deliveries:
            return []
        with translate_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for d in deliveries:
                self.scripts["renew"](
                    keys=[self.keys.task(d.task_id), d.stream],
                    args=[GROUP, consumer, d.msg_id, d.attempt, d.owner],
                    client=pipe,
                )
            return [Lease(_s(r)) for r in pipe.execute()]

    # -- outcomes ------------------------------------------------------------------------

    def complete(self, d: Delivery, result: TaskResult) -> bool:
        """Record the result. False means fenced: the task was reclaimed from this owner."""
        return self.complete_many([(d, result)])[0]

    def complete_many(self, items: Sequence[tuple[Delivery, TaskResult]]) -> list[bool]:
        """Record several results in one round trip (each still fenced on its own)."""
        k = self.keys
        now = now_ms()
        bucket = k.tput(now // 1000 // TPUT_BUCKET_S)
        with translate_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            for d, result in items:
                self.scripts["complete"](
                    keys=[k.task(d.task_id), d.stream, k.job(d.job_id), k.job_tasks(d.job_id),
                          k.stats(), bucket, k.tenants_open(), k.callbacks()],
                    args=[GROUP, d.msg_id, d.attempt, d.owner, now, result.to_json(),
                          self.config.job_ttl_s, TPUT_TTL_S],
                    client=pipe,
                )
            # The duration histograms ride in the same round trip (distributed/metrics.py).
            add_durations(pipe, k, [result for _, result in items])
            return [bool(r) for r in pipe.execute()[:len(items)]]

    def fail(
        self, d: Delivery, *, kind: str, message: str, permanent: bool, retry_in_s: float
    ) -> str:
        """Record a failed attempt: 'retry' (delayed), 'dead' (dead-lettered) or 'fenced'."""
        k = self.keys
        now = now_ms()
        error = json.dumps({"kind": kind, "message": message[:2000], "attempt": d.attempt})
        with translate_redis_errors():
            verdict = self.scripts["fail"](
                keys=[k.task(d.task_id), d.stream, k.job(d.job_id), k.job_tasks(d.job_id),
                      k.stats(), k.delayed(), k.dead(), k.tenants_open(), k.callbacks()],
                args=[GROUP, d.msg_id, d.attempt, d.owner, now, error, "1" if permanent else "0",
                      self.config.max_attempts, now + int(retry_in_s * 1000),
                      self.config.job_ttl_s],
            )
        return _s(verdict)

    def release(self, d: Delivery) -> bool:
        """Give back a delivery not worked on (shutdown); its attempt is not counted."""
        with translate_redis_errors():
            return bool(self.scripts["release"](
                keys=[self.keys.task(d.task_id), d.stream, self.keys.doorbell(),
                      self.keys.stats()],
                args=[GROUP, d.msg_id, d.attempt, d.owner, self.keys.tenant_base()],
            ))

    def cancel_job(self, job_id: str) -> int:
        """Cancel the job's tasks that have not started; returns how many were cancelled.
        Raises :class:`NotFound` for an unknown (or expired, or malformed) job id."""
        k = self.keys
        if not is_job_id(job_id):
            raise NotFound(f"no distributed job {job_id!r}")
        with translate_redis_errors():
            if not self.client.exists(k.job(job_id)):
                raise NotFound(f"no distributed job {job_id!r}")
            ids = [_s(t) for t in self.client.lrange(k.job_tasks(job_id), 0, -1)]
            return int(self.scripts["cancel"](
                keys=[k.stats(), k.delayed(), k.job(job_id), k.job_tasks(job_id),
                      k.tenants_open(), k.callbacks(), *(k.task(t) for t in ids)],
                args=[now_ms(), self.config.job_ttl_s, *ids],
            ))

    def delete_job(self, job_id: str, tenant: str) -> None:
        """Delete a finished job's records (job hash, task hashes, task list, index entries;
        dead letters still held are discarded first). Raises :class:`NotFound` for an unknown
        job, :class:`JobNotFinished` while it has open tasks."""
        k = self.keys
        if not is_job_id(job_id):
            raise NotFound(f"no distributed job {job_id!r}")
        with translate_redis_errors():
            ids = [_s(t) for t in self.client.lrange(k.job_tasks(job_id), 0, -1)]
            answer = _s(self.scripts["delete_job"](
                keys=[k.job(job_id), k.job_tasks(job_id), k.jobs(), k.jobs(tenant), k.dead(),
                      k.stats(), k.callbacks(), *(k.task(t) for t in ids)],
                args=[job_id, *ids],
            ))
        if answer == "missing":
            raise NotFound(f"no distributed job {job_id!r}")
        if answer == "open":
            raise JobNotFinished(f"job {job_id} still has open tasks")

    # -- maintenance ---------------------------------------------------------------------

    def promote_due(self, limit: int = 500) -> int:
        """Move retries whose backoff has elapsed back to their queues."""
        k = self.keys
        with translate_redis_errors():
            due = self.client.zrangebyscore(k.delayed(), "-inf", now_ms(), start=0, num=limit)
            if not due:
                return 0
            ids = [_s(t) for t in due]
            return int(self.scripts["promote"](
                keys=[k.delayed(), k.stats(), k.doorbell(), *(k.task(t) for t in ids)],
                args=[k.tenant_base(), *ids],
            ))


def _reused_message() -> str:
    return ("this Idempotency-Key was already used with a different request; send a new key "
            "for a new request")
