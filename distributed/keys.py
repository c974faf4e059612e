"""Every Redis key of the service, in one place, under one prefix (``REDIS_PREFIX``,
default ``imgproc``). Lua scripts receive these names through KEYS; none is built in a script
except the per-tenant lists and rings, named in Lua from ``tenant_base()`` (passed in ARGV)
because the tenant of a task being fetched, retried or handed back is only known there (and
fetch.lua reads the state of the task ids it pops, from ``task("")`` + id, to drop the ones
cancelled while listed).

Key                      Type    Contents
{p}:tq:{priority}:{tenant} LIST  the tenant's pending task ids of that priority, oldest first
                                 (enqueue, due retries and re-queued dead letters at the back,
                                 a released task at the front)
{p}:tq:{priority}        LIST    ring of that priority: each tenant whose list is not empty,
                                 once. fetch.lua pops one, moves one of its tasks into the
                                 stream, and pushes it back while its list is not empty
                                 (round-robin: one task per tenant per turn)
{p}:queue:{priority}     STREAM  one entry per delivery, field ``task`` = task id, added by
                                 fetch.lua right before it reads it. Consumer group
                                 ``workers``; its pending-entries list (PEL) holds the
                                 tasks in hand and an entry's idle time is the task's lease.
                                 Entries are XACKed and XDELed when a delivery ends.
{p}:tenants:open         HASH    tenant -> its pending + running + delayed tasks (checked
                                 against TENANT_MAX_OPEN_TASKS by enqueue.lua); 0 is removed
{p}:doorbell             STREAM  MAXLEN 1, an entry each time tasks become pending; idle
                                 workers block on it (XREAD BLOCK) instead of on the streams
{p}:task:{task_id}       HASH    the task: state, attempts, owner, tenant, image (id), payload
                                 (JSON), msg_id of the live delivery, error, result, timings.
                                 Completed or cancelled: payload and delivery fields dropped,
                                 EXPIRE after RETENTION_DAYS (dead: kept whole, re-queueable)
{p}:job:{job_id}         HASH    the job: total/completed/dead/cancelled counters,
                                 created/started/finished times, tenant, pipeline, options;
                                 EXPIRE (with its tasks list) RETENTION_DAYS after it finished
{p}:job:{job_id}:tasks   LIST    task ids of the job, in image order
{p}:jobs                 ZSET    job id -> epoch ms of its submission (enqueue.lua adds it in
                                 the same script as the job hash); the listing trims the ids
                                 whose job hash has expired (distributed/listing.py)
{p}:jobs:t:{tenant}      ZSET    the same index for one tenant's jobs (the API's lists for a
                                 caller who is not an admin); written and trimmed like {p}:jobs
{p}:delayed              ZSET    task id -> epoch ms when its retry is due
{p}:dead                 ZSET    task id -> epoch ms when it was dead-lettered
{p}:stats                HASH    counters: accepted, pending:{priority}, running, delayed,
                                 completed, dead, cancelled (each task is in exactly one), and
                                 event totals: retried, reclaimed, fenced, failed_attempts,
                                 workers_reaped, requeued
{p}:tput:{bucket}        STRING  completions in a 5-second bucket (epoch s // 5), TTL 180 s
{p}:workers              ZSET    worker id -> epoch ms of its last heartbeat
{p}:worker:{worker_id}   HASH    worker record (id, hostname, pid, version, concurrency,
                                 filters, started_at, state, current task, counters); its TTL
                                 is refreshed by every heartbeat
{p}:workers:gone         ZSET    worker id -> epoch ms it stopped or was reaped (kept for the
                                 status page for DEAD_WORKER_RETENTION_SECONDS)
{p}:wtasks:{worker_id}   LIST    the worker's recent tasks, newest first, JSON objects {task,
                                 job, tenant, started_ms, ended_ms, outcome}; LTRIM to
                                 WORKER_TASKS_KEPT, EXPIRE DEAD_WORKER_RETENTION_SECONDS
{p}:history              LIST    one sample per HISTORY_BUCKET_S bucket, newest first, LTRIM to
                                 HISTORY_SAMPLES (one hour): "<epoch ms>,<counter>,..." with
                                 the {p}:stats counters of distributed/history.py SAMPLED;
                                 written by history.lua from any worker or API process
{p}:history:last         STRING  the bucket (epoch s // HISTORY_BUCKET_S) of the newest sample:
                                 the many writers of one bucket write it once
{p}:metrics:durations    HASH    task-duration histograms the workers push with each batch of
                                 completions: ``<series>|<bucket>`` counts, ``<series>|sum_us``
                                 (series ``task`` and ``filter:<name>``; distributed/metrics.py)
{p}:callbacks            ZSET    job id -> epoch ms when its job-finished callback is next due:
                                 added by the script that settles a job with a callback_url
                                 (lib.lua job_settle); a sender that claims an entry pushes its
                                 score to now + CALLBACK_LEASE_MS (its claim; the score is the
                                 fencing token), records the attempt, then removes the entry
                                 (delivered, given up) or re-scores it (the retry's due time).
                                 The job hash holds the callback's record: callback_url,
                                 callback_state (pending/delivered/failed), callback_tries,
                                 callback_next_at, callback_attempts (JSON list, last ones)
{p}:idem:{sha256(key)}   STRING  "<job id> <request fingerprint>" of the first submission with
                                 that Idempotency-Key (TTL IDEMPOTENCY_TTL_SECONDS)
{p}:rl:{ident}           STRING  the API's rate limit (THROTTLE_RATE) of one API key id or
                                 client address (an ident that is not a plain id or address
                                 as ``h`` + sha256): its theoretical arrival time, integer
                                 microseconds of Redis's clock (ratelimit.lua, GCRA); PX until
                                 then, so it is gone once the bucket is full again
{p}:usage                HASH    tenant -> bytes it keeps in the image storage (uploads,
                                 outputs, thumbnails): reserved by the API before an upload
                                 is written (usage_reserve.lua, checked against the quota),
                                 added by the workers for the outputs they wrote, given back
                                 on delete and expiry (usage_release.lua, never below 0; a
                                 tenant at 0 is removed). No TTL: it is the running total
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

PRIORITIES = ("high", "normal", "low")
ANONYMOUS = "anonymous"  # the tenant of tasks submitted without one
GROUP = "workers"
TPUT_BUCKET_S = 5
TPUT_TTL_S = 180
HISTORY_BUCKET_S = 10
HISTORY_SAMPLES = 360  # one hour of buckets
WORKER_TASKS_KEPT = 100
# A tenant id as it may appear in a key name ("anonymous", or an API key's id).
_TENANT = re.compile(r"[a-z0-9_]{1,40}")
# A rate-limited identity kept as is in its key name: an API key's id, an IPv4 or IPv6 address.
_IDENT = re.compile(r"[A-Za-z0-9_.:]{1,64}")


def is_tenant(value: object) -> bool:
    """A well-formed tenant id ("anonymous", or an API key's id): safe in a key name."""
    return isinstance(value, str) and _TENANT.fullmatch(value) is not None


@dataclass(frozen=True)
class Keys:
    """Key builders for one prefix (``QueueConfig.keys`` gives the set of a config)."""

    prefix: str = "imgproc"

    def queue(self, priority: str) -> str:
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        return f"{self.prefix}:queue:{priority}"

    def queues(self) -> list[str]:
        return [self.queue(p) for p in PRIORITIES]

    def task(self, task_id: str) -> str:
        return f"{self.prefix}:task:{task_id}"

    def job(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def job_tasks(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}:tasks"

    def jobs(self, tenant: str | None = None) -> str:
        """The job index: everyone's (``tenant`` None) or one tenant's."""
        if tenant is None:
            return f"{self.prefix}:jobs"
        if not _TENANT.fullmatch(tenant):
            raise ValueError(f"malformed tenant id {tenant!r}")
        return f"{self.prefix}:jobs:t:{tenant}"

    def delayed(self) -> str:
        return f"{self.prefix}:delayed"

    def dead(self) -> str:
        return f"{self.prefix}:dead"

    def stats(self) -> str:
        return f"{self.prefix}:stats"

    def tput(self, bucket: int) -> str:
        return f"{self.prefix}:tput:{bucket}"

    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}:worker:{worker_id}"

    def workers_gone(self) -> str:
        return f"{self.prefix}:workers:gone"

    def worker_tasks(self, worker_id: str) -> str:
        return f"{self.prefix}:wtasks:{worker_id}"

    def history(self) -> str:
        return f"{self.prefix}:history"

    def history_last(self) -> str:
        return f"{self.prefix}:history:last"
    def durations(self) -> str:
        return f"{self.prefix}:metrics:durations"

    def callbacks(self) -> str:
        return f"{self.prefix}:callbacks"

    def tenant_base(self) -> str:
        """Base of the per-tenant keys, passed to Lua (the tenant of a task is only known
        there): ring ``{base}{priority}``, lists ``{base}{priority}:{tenant}``."""
        return f"{self.prefix}:tq:"

    def tenant_ring(self, priority: str) -> str:
        return f"{self.tenant_base()}{self.queue(priority).rsplit(':', 1)[1]}"

    def tenant_queue(self, priority: str, tenant: str) -> str:
        return f"{self.tenant_ring(priority)}:{tenant}"

    def tenants_open(self) -> str:
        return f"{self.prefix}:tenants:open"

    def doorbell(self) -> str:
        return f"{self.prefix}:doorbell"

    def usage(self) -> str:
        return f"{self.prefix}:usage"

    def idempotency(self, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.prefix}:idem:{digest}"

    def rate_limit(self, ident: str) -> str:
        """The rate limit of one API key id or client address (anything else is hashed, so
        the name stays short and plain)."""
        if not _IDENT.fullmatch(ident):
            ident = "h" + hashlib.sha256(ident.encode()).hexdigest()
        return f"{self.prefix}:rl:{ident}"

