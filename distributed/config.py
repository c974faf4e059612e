"""Settings of the distributed mode, built once from the environment and passed in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from distributed.keys import Keys


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    return default if value is None or value.strip() == "" else value.strip()


@dataclass(frozen=True)
class QueueConfig:
    """What the API and the workers must agree on. Times carry their unit in the name."""

    redis_url: str = ""
    prefix: str = "imgproc"
    heartbeat_interval_s: float = 2.0
    lease_s: float = 3.0
    max_retries: int = 3
    retry_backoff_base_s: float = 0.5
    retry_backoff_max_s: float = 30.0
    max_queued_tasks: int = 50_000
    job_ttl_s: int = 7 * 24 * 3600
    idempotency_ttl_s: int = 24 * 3600
    dead_worker_retention_s: int = 600
    alert_dead_letters: int = 10
    alert_failure_rate: float = 0.2

    @property
    def keys(self) -> Keys:
        """The Redis key names of this config (one prefix)."""
        return Keys(self.prefix)

    @property
    def lease_ms(self) -> int:
        return int(self.lease_s * 1000)

    @property
    def max_attempts(self) -> int:
        return self.max_retries + 1

    @property
    def heartbeat_timeout_s(self) -> float:
        """A worker silent for longer than this is dead."""
        return 3 * self.heartbeat_interval_s

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> QueueConfig:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            redis_url=_get(env, "REDIS_URL", d.redis_url),
            prefix=_get(env, "REDIS_PREFIX", d.prefix),
            heartbeat_interval_s=float(
                _get(env, "HEARTBEAT_INTERVAL", str(d.heartbeat_interval_s))
            ),
            lease_s=float(_get(env, "TASK_LEASE_SECONDS", str(d.lease_s))),
            max_retries=int(_get(env, "MAX_RETRIES", str(d.max_retries))),
            retry_backoff_base_s=float(
                _get(env, "RETRY_BACKOFF_BASE", str(d.retry_backoff_base_s))
            ),
            retry_backoff_max_s=float(_get(env, "RETRY_BACKOFF_MAX", str(d.retry_backoff_max_s))),
            max_queued_tasks=int(_get(env, "MAX_QUEUED_TASKS", str(d.max_queued_tasks))),
            job_ttl_s=int(_get(env, "JOB_TTL_SECONDS", str(d.job_ttl_s))),
            idempotency_ttl_s=int(_get(env, "IDEMPOTENCY_TTL_SECONDS", str(d.idempotency_ttl_s))),
            dead_worker_retention_s=int(
                _get(env, "DEAD_WORKER_RETENTION", str(d.dead_worker_retention_s))
            ),
            alert_dead_letters=int(_get(env, "ALERT_DEAD_LETTERS", str(d.alert_dead_letters))),
            alert_failure_rate=float(_get(env, "ALERT_FAILURE_RATE", str(d.alert_failure_rate))),
        )
