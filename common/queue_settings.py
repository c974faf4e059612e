"""The queue protocol's variables: read by the API and the workers alike into
``distributed.config.QueueConfig`` (both sides must see the same values). Re-exported by
common/settings.py, where every other variable is declared."""

from __future__ import annotations

from collections.abc import Mapping

from common.env import Var, load
from distributed.config import QueueConfig

# --- the queue protocol: the API and the workers must agree ------------------------------

QUEUE_VARS: dict[str, Var] = {
    "redis_url": Var(
        "REDIS_URL",
        "Redis server, e.g. `redis://host:6379/0`. Unset: `make run` starts an embedded one; "
        "the API alone answers 503 on distributed endpoints; a worker cannot start without it.",
        unit="URL",
    ),
    "prefix": Var("REDIS_PREFIX", "prefix of every Redis key"),
    "heartbeat_interval_s": Var(
        "HEARTBEAT_INTERVAL_SECONDS",
        "time between worker heartbeats; a worker silent for 3 intervals is dead",
        unit="seconds", aliases=("HEARTBEAT_INTERVAL",), minimum=0.01,
    ),
    "lease_s": Var(
        "TASK_LEASE_SECONDS",
        "a task whose lease is not renewed for this long is handed to another worker",
        unit="seconds", minimum=0.01,
    ),
    "max_retries": Var(
        "MAX_RETRIES", "retries of a transient error before the dead-letter queue",
        unit="retries", minimum=0,
    ),
    "retry_backoff_base_s": Var(
        "RETRY_BACKOFF_BASE_SECONDS",
        "first retry delay (doubles per retry, half of it random jitter)",
        unit="seconds", aliases=("RETRY_BACKOFF_BASE",), minimum=0,
    ),
    "retry_backoff_max_s": Var(
        "RETRY_BACKOFF_MAX_SECONDS", "longest retry delay",
        unit="seconds", aliases=("RETRY_BACKOFF_MAX",), minimum=0,
    ),
    "max_queued_tasks": Var(
        "MAX_QUEUED_TASKS",
        "cap on queued + running + delayed tasks; beyond it the API answers 429 with Retry-After",
        unit="tasks", minimum=1,
    ),
    "tenant_max_open_tasks": Var(
        "TENANT_MAX_OPEN_TASKS",
        "cap on one tenant's queued + running + delayed tasks; beyond it that tenant gets 429 "
        "`tenant_queue_full` with Retry-After, the others are not affected",
        unit="tasks", minimum=1,
    ),
    "retention_days": Var(
        "RETENTION_DAYS",
        "how long finished jobs and tasks stay in Redis, and uploads, job outputs (with "
        "thumbnails) and local jobs' records on disk, deleted by a janitor thread in the API "
        "(fractions allowed: 0.001 = 86.4 s)",
        unit="days", minimum=0.00001,
    ),
    "idempotency_ttl_s": Var(
        "IDEMPOTENCY_TTL_SECONDS", "how long an `Idempotency-Key` is remembered",
        unit="seconds", minimum=1,
    ),
    "dead_worker_retention_s": Var(
        "DEAD_WORKER_RETENTION_SECONDS",
        "how long a dead or stopped worker stays on the status page",
        unit="seconds", aliases=("DEAD_WORKER_RETENTION",), minimum=0,
    ),
    "alert_dead_letters": Var(
        "ALERT_DEAD_LETTERS", "alert when more tasks than this are dead-lettered",
        unit="tasks", minimum=0,
    ),
    "alert_failure_rate": Var(
        "ALERT_FAILURE_RATE",
        "alert when live workers' recent failure rate is above this (0.2 = 20 %)",
        unit="fraction", minimum=0,
    ),
    "alert_oldest_pending_s": Var(
        "ALERT_OLDEST_PENDING_SECONDS",
        "alert when the oldest pending task was submitted longer ago than this",
        unit="seconds", minimum=0,
    ),
    "alert_worker_died_s": Var(
        "ALERT_WORKER_DIED_SECONDS",
        "alert for this long after a worker died (missed its heartbeats or was reaped), even "
        "while others are alive",
        unit="seconds", minimum=0,
    ),
}


def queue_config_from_env(env: Mapping[str, str] | None = None) -> QueueConfig:
    """The queue settings alone (benchmarks and tools that talk to the queue directly)."""
    return load(QueueConfig, env, fields=QUEUE_VARS)
