"""Writes: ask a worker to drain."""

from __future__ import annotations

from distributed.registry import Drain
from image_api.broker import broker
from image_api.cluster.selectors import MAX_WORKER_ID, worker_not_found
from image_api.errors import ApplicationError


def worker_drain(*, worker_id: str) -> None:
    """Flag a live worker to finish its task in hand, stop fetching and exit 0. 404 when no
    such worker is known, 409 when it is already gone (stopped, drained or dead)."""
    found = broker().drain_worker(worker_id) if len(worker_id) <= MAX_WORKER_ID else Drain.UNKNOWN
    if found is Drain.UNKNOWN:
        raise worker_not_found(worker_id)
    if found is Drain.GONE:
        raise ApplicationError(
            f"Worker {worker_id!r} is not running any more (stopped, drained or dead).",
            status=409, code="worker_gone", extra={"worker": worker_id})
