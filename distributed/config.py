"""Settings of the distributed mode: a plain frozen dataclass, passed in.

No environment parsing here: ``common/settings.py`` maps these fields to environment
variables (``QUEUE_VARS``) for the API and the workers alike."""

from __future__ import annotations

from dataclasses import dataclass

from distributed.keys import Keys


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
    tenant_max_open_tasks: int = 20_000
    retention_days: float = 7.0
    idempotency_ttl_s: int = 24 * 3600
    dead_worker_retention_s: int = 600
    alert_dead_letters: int = 10
    alert_failure_rate: float = 0.2
    alert_oldest_pending_s: float = 300.0
    alert_worker_died_s: float = 600.0

    @property
    def keys(self) -> Keys:
        """The Redis key names of this config (one prefix)."""
        return Keys(self.prefix)

    @property
    def job_ttl_s(self) -> int:
        """How long a finished job, its tasks and its files are kept (``RETENTION_DAYS``)."""
        return max(1, round(self.retention_days * 86400))

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
