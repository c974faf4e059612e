"""Worker registry: a heartbeat sorted set plus a per-worker hash with a TTL.

A worker registers on start, heartbeats every HEARTBEAT_INTERVAL_SECONDS (score = time of the
heartbeat, hash TTL refreshed), and deregisters on a graceful stop. Workers also reap: any
worker silent for longer than the heartbeat timeout is declared dead once (atomically, in
reap.lua), counted, and kept on the status page for a while as dead.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import redis

from distributed.clock import now_ms
from distributed.config import QueueConfig
from distributed.errors import translate_redis_errors
from distributed.keys import GROUP, WORKER_TASKS_KEPT
from distributed.scripts import Scripts


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker tells the registry about itself when it starts."""

    id: str
    hostname: str
    pid: int
    version: str
    concurrency: int
    filters: tuple[str, ...]
    started_at_ms: int
    instance: str


class Drain(enum.Enum):
    """What a drain request found."""

    REQUESTED = "requested"  # the live worker will drain (flag set now or before)
    GONE = "gone"  # it already stopped, was declared dead or is silent past the timeout
    UNKNOWN = "unknown"  # no such worker (or forgotten after DEAD_WORKER_RETENTION_SECONDS)


@dataclass(frozen=True)
class TaskSpan:
    """One task a worker ran, for its timeline (``outcome``: completed, retry, dead, fenced)."""

    task: str
    job: str
    tenant: str
    started_ms: int
    ended_ms: int
    outcome: str


class Registry:
    def __init__(self, client: redis.Redis, config: QueueConfig) -> None:
        self.client = client
        self.config = config
        self.keys = config.keys
        self.scripts = Scripts(client)

    @property
    def _ttl_s(self) -> int:
        # Long enough for the status page to show a dead worker for a while.
        config = self.config
        return max(int(config.dead_worker_retention_s), int(config.heartbeat_timeout_s) + 1)

    @staticmethod
    def _static(info: WorkerInfo) -> dict[str, Any]:
        fields = asdict(info)
        fields["filters"] = json.dumps(list(info.filters))
        return fields

    def register(self, info: WorkerInfo) -> None:
        """(Re)join: a restarted worker with the same id replaces its old record."""
        k = self.keys
        fields = self._static(info)
        fields.update(state="idle", current_task="", tasks_completed=0, tasks_failed=0,
                      recent_total=0, recent_failed=0)
        with translate_redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(k.worker(info.id))
            pipe.hset(k.worker(info.id), mapping={f: str(v) for f, v in fields.items()})
            pipe.expire(k.worker(info.id), self._ttl_s)
            pipe.zadd(k.workers(), {info.id: now_ms()})
            pipe.zrem(k.workers_gone(), info.id)
            pipe.execute()

    def heartbeat(self, info: WorkerInfo, fields: Mapping[str, Any]) -> bool:
        """Refresh the heartbeat and the worker's record: its static info (so a record lost
        with a Redis restart comes back) and live figures (state, current task, counts).
        Returns whether a drain was requested (:meth:`request_drain`)."""
        k = self.keys
        worker_id = info.id
        record = {f: str(v) for f, v in self._static(info).items()}
        record.update({f: str(v) for f, v in fields.items()})
        with translate_redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.zadd(k.workers(), {worker_id: now_ms()})
            pipe.zrem(k.workers_gone(), worker_id)
            pipe.hset(k.worker(worker_id), mapping=record)
            pipe.expire(k.worker(worker_id), self._ttl_s)
            pipe.hget(k.worker(worker_id), "drain")
            drain = pipe.execute()[-1]
        return bool(drain)

    def request_drain(self, worker_id: str) -> Drain:
        """Ask a live worker to finish its task in hand, stop fetching and exit (it sees the
        flag with its next heartbeat)."""
        k = self.keys
        now = now_ms()
        cutoff = now - int(self.config.heartbeat_timeout_s * 1000)
        with translate_redis_errors():
            found = self.scripts["drain"](
                keys=[k.workers(), k.workers_gone(), k.worker(worker_id)],
                args=[worker_id, cutoff, now],
            )
        return {1: Drain.REQUESTED, 0: Drain.GONE}.get(int(found), Drain.UNKNOWN)

    def record_tasks(self, worker_id: str, spans: list[TaskSpan]) -> None:
        """Add tasks that ended to the worker's timeline (newest first, capped)."""
        if not spans:
            return
        key = self.keys.worker_tasks(worker_id)
        with translate_redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.lpush(key, *(json.dumps(asdict(span)) for span in spans))
            pipe.ltrim(key, 0, WORKER_TASKS_KEPT - 1)
            pipe.expire(key, self._ttl_s)
            pipe.execute()

    def recent_tasks(self, worker_id: str) -> list[TaskSpan]:
        """The worker's recent tasks, newest first (at most WORKER_TASKS_KEPT)."""
        with translate_redis_errors():
            raw = self.client.lrange(self.keys.worker_tasks(worker_id), 0,
                                     WORKER_TASKS_KEPT - 1)
        spans = []
        for item in raw:
            try:
                spans.append(TaskSpan(**json.loads(item)))
            except (ValueError, TypeError):
                continue  # written by another version
        return spans

    def record(self, worker_id: str) -> tuple[int, dict[str, Any]] | None:
        """(now ms, the raw record of one worker, as in :meth:`snapshot`), or None when it
        is neither registered nor recently departed."""
        k = self.keys
        with translate_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.zscore(k.workers(), worker_id)
            pipe.zscore(k.workers_gone(), worker_id)
            pipe.hgetall(k.worker(worker_id))
            live, gone, raw = pipe.execute()
        if live is None and gone is None:
            return None
        record = {key.decode(): value.decode() for key, value in raw.items()}
        record.setdefault("id", worker_id)
        record["_score_ms"] = int(live if live is not None else gone)
        record["_departed"] = live is None
        return now_ms(), record

    def deregister(self, worker_id: str, *, state: str = "stopped") -> None:
        """Leave on a graceful stop; the record stays visible as ``stopped`` for a while."""
        k = self.keys
        with translate_redis_errors():
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(k.workers(), worker_id)
            pipe.zadd(k.workers_gone(), {worker_id: now_ms()})
            pipe.hset(k.worker(worker_id), mapping={"state": state, "current_task": "",
                                                    "gone_at": str(now_ms())})
            pipe.expire(k.worker(worker_id), self._ttl_s)
            pipe.execute()

    def reap(self) -> list[str]:
        """Declare silent workers dead; returns their ids. Safe to run from every worker."""
        k = self.keys
        now = now_ms()
        cutoff = now - int(self.config.heartbeat_timeout_s * 1000)
        reaped = []
        with translate_redis_errors():
            silent = self.client.zrangebyscore(k.workers(), "-inf", cutoff)
            for raw in silent:
                worker_id = raw.decode()
                done = self.scripts["reap"](
                    keys=[k.workers(), k.workers_gone(), k.stats(), k.worker(worker_id),
                          *k.queues()],
                    args=[worker_id, cutoff, now, self._ttl_s, GROUP],
                )
                if done:
                    reaped.append(worker_id)
            # Forget departed workers after the retention period.
            self.client.zremrangebyscore(
                k.workers_gone(), "-inf", now - self.config.dead_worker_retention_s * 1000
            )
        return reaped

    def snapshot(self) -> tuple[int, list[dict[str, Any]]]:
        """(now ms, every registered or recently departed worker with its raw record).
        Costs O(number of workers)."""
        k = self.keys
        with translate_redis_errors():
            pipe = self.client.pipeline(transaction=False)
            pipe.zrange(k.workers(), 0, -1, withscores=True)
            pipe.zrange(k.workers_gone(), 0, -1, withscores=True)
            live, gone = pipe.execute()
            ids = [(w.decode(), int(s), False) for w, s in live]
            ids += [(w.decode(), int(s), True) for w, s in gone]
            pipe = self.client.pipeline(transaction=False)
            for worker_id, _, _ in ids:
                pipe.hgetall(k.worker(worker_id))
            records = pipe.execute()
        now = now_ms()
        out = []
        for (worker_id, score, departed), raw in zip(ids, records, strict=True):
            record = {key.decode(): value.decode() for key, value in raw.items()}
            record.setdefault("id", worker_id)
            record["_score_ms"] = score
            record["_departed"] = departed
            out.append(record)
        return now, out
