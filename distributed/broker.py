"""The API's handle on the distributed mode: one connection pool and every operation a view
needs, for one :class:`QueueConfig`. Callers see domain objects and domain errors only."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from distributed.callbacks import CallbackOutbox
from distributed.config import QueueConfig
from distributed.connection import connect
from distributed.dead_letters import (
    discard_dead_letters,
    list_dead_letters,
    list_tenant_dead_letters,
    requeue_dead_letters,
)
from distributed.history import history
from distributed.jobs import get_job
from distributed.listing import job_count, job_ranks, job_summaries, trim_expired
from distributed.metrics import ClusterMetrics, cluster_metrics
from distributed.queue import Queue
from distributed.registry import Drain, Registry
from distributed.status import cluster_status, worker_view
from distributed.usage import StorageUsage


class Broker:
    """Built once per process and shared by every request (its client is thread-safe).

    Raises :class:`RedisUnavailable` at construction when ``config.redis_url`` is empty."""

    def __init__(self, config: QueueConfig, *, socket_timeout_s: float = 3.0) -> None:
        self.config = config
        self._client = connect(config.redis_url, socket_timeout_s=socket_timeout_s)
        self.queue = Queue(self._client, config)
        self.registry = Registry(self._client, config)
        self.callbacks = CallbackOutbox(self._client, config, self.queue.scripts)
        self.usage = StorageUsage(self._client, config, self.queue.scripts)

    def ping(self) -> None:
        """Raises :class:`RedisUnavailable` when Redis does not answer."""
        self.queue.ping()

    def job(self, job_id: str) -> dict[str, Any] | None:
        """A job with its tasks (see ``distributed.jobs.get_job``), or None."""
        return get_job(self._client, self.config, job_id)

    def job_count(self, tenant: str | None = None) -> int:
        """Distributed jobs in the index (everyone's, or ``tenant``'s), newest first (see
        ``distributed.listing``)."""
        return job_count(self._client, self.config, tenant)

    def job_ranks(self, start: int, stop: int, tenant: str | None = None) -> list[tuple[str, int]]:
        return job_ranks(self._client, self.config, start=start, stop=stop, tenant=tenant)

    def job_summaries(
        self, job_ids: list[str], tenant: str | None = None
    ) -> dict[str, dict[str, Any] | None]:
        return job_summaries(self._client, self.config, job_ids, tenant)

    def trim_expired_jobs(self, tenant: str | None = None) -> int:
        return trim_expired(self._client, self.config, tenant=tenant)

    def cluster_status(self) -> dict[str, Any]:
        return cluster_status(self._client, self.config)

    def history(self) -> dict[str, Any]:
        """The last hour's samples of queue depth, throughput and failures
        (``distributed.history``)."""
        return history(self._client, self.config, self.registry.scripts)

    def worker(self, worker_id: str) -> dict[str, Any] | None:
        """One worker as in the status, with ``recent_tasks`` (newest first), or None."""
        found = self.registry.record(worker_id)
        if found is None:
            return None
        now, record = found
        view = worker_view(record, now, self.config)
        view["recent_tasks"] = [asdict(span) for span in self.registry.recent_tasks(worker_id)]
        return view

    def drain_worker(self, worker_id: str) -> Drain:
        """Ask a live worker to drain (see ``Registry.request_drain``)."""
        return self.registry.request_drain(worker_id)

    def metrics(self) -> ClusterMetrics:
        """The figures of a metrics scrape (``distributed.metrics``)."""
        return cluster_metrics(self._client, self.config)

    def dead_letters(self, *, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        return list_dead_letters(self._client, self.config, offset=offset, limit=limit)

    def tenant_dead_letters(
        self, tenant: str, *, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]], bool]:
        return list_tenant_dead_letters(self._client, self.config, tenant, offset=offset,
                                        limit=limit)

    def requeue_dead_letters(self, task_ids: list[str] | None) -> int:
        return requeue_dead_letters(self._client, self.config, task_ids)

    def discard_dead_letters(self, task_ids: list[str] | None) -> int:
        return discard_dead_letters(self._client, self.config, task_ids)

    def close(self) -> None:
        self._client.close()
