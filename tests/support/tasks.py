"""Task messages for tests: no-op and sleep tasks of a fresh job, and submitting them."""

from __future__ import annotations

from distributed.ids import new_job_id
from distributed.messages import TaskMessage
from distributed.queue import Queue

__all__ = ["noop_tasks", "sleep_tasks", "submit_tasks"]


def noop_tasks(job_id: str, count: int) -> list[TaskMessage]:
    return [TaskMessage(kind="noop", job_id=job_id, index=i) for i in range(count)]


def sleep_tasks(job_id: str, seconds: float, count: int = 1) -> list[TaskMessage]:
    return [TaskMessage(kind="sleep", job_id=job_id, index=i, seconds=seconds)
            for i in range(count)]


def submit_tasks(queue: Queue, count: int = 1, *, seconds: float | None = None,
                 priority: str = "normal", job_id: str | None = None,
                 key: str | None = None, tenant: str = "anonymous") -> str:
    """Submit ``count`` no-op tasks (sleep tasks with ``seconds``) as one job; its id."""
    job_id = job_id or new_job_id()
    messages = noop_tasks(job_id, count) if seconds is None else sleep_tasks(
        job_id, seconds, count)
    return queue.submit(job_id=job_id, priority=priority, messages=messages,
                        job_fields={"mode": "distributed"}, idempotency_key=key,
                        tenant=tenant).job_id
