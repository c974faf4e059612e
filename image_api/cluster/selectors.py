"""Reads: the cluster status from the registry and the queue."""

from __future__ import annotations

from typing import Any

from image_api.broker import broker
from image_api.tenancy import Caller

# Where each worker runs: for admins only (they help an attacker more than a tenant).
ADMIN_ONLY_FIELDS = ("hostname", "pid")


def workers_status(viewer: Caller) -> dict[str, Any]:
    """The cluster status; hostnames and pids only for an admin (None for others)."""
    status = broker().cluster_status()
    if not viewer.admin:
        for worker in status["workers"]:
            for name in ADMIN_ONLY_FIELDS:
                if name in worker:
                    worker[name] = None
    return status
