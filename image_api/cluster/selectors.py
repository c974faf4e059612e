"""Reads: the cluster status from the registry and the queue, one worker with its timeline,
and the last hour's history."""

from __future__ import annotations

from typing import Any

from image_api.broker import broker
from image_api.errors import ApplicationError
from image_api.tenancy import Caller

# Where each worker runs: for admins only (they help an attacker more than a tenant).
ADMIN_ONLY_FIELDS = ("hostname", "pid")
# Longest worker id looked up (ids are free-form: WORKER_ID).
MAX_WORKER_ID = 200


def _hide_location(worker: dict[str, Any], viewer: Caller) -> dict[str, Any]:
    if not viewer.admin:
        for name in ADMIN_ONLY_FIELDS:
            if name in worker:
                worker[name] = None
    return worker


def workers_status(viewer: Caller) -> dict[str, Any]:
    """The cluster status; hostnames and pids only for an admin (None for others)."""
    status = broker().cluster_status()
    for worker in status["workers"]:
        _hide_location(worker, viewer)
    return status


def worker_not_found(worker_id: str) -> ApplicationError:
    return ApplicationError(f"Unknown worker {worker_id[:MAX_WORKER_ID]!r}.", status=404,
                            code="worker_not_found", extra={"worker": worker_id[:MAX_WORKER_ID]})


def worker_detail(worker_id: str, viewer: Caller) -> dict[str, Any]:
    """One registered or recently departed worker as in the status, with its recent tasks
    (newest first; a tenant sees only its own tasks). 404 when unknown."""
    found = broker().worker(worker_id) if len(worker_id) <= MAX_WORKER_ID else None
    if found is None:
        raise worker_not_found(worker_id)
    found["recent_tasks"] = [span for span in found["recent_tasks"]
                             if viewer.may_see(span["tenant"])]
    return _hide_location(found, viewer)


def cluster_history() -> dict[str, Any]:
    """Queue depth, throughput and failures over the last hour (``distributed.history``)."""
    return broker().history()
