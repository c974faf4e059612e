"""Reads: a page of dead letters, newest first."""

from __future__ import annotations

from typing import Any

from image_api.broker import broker
from image_api.jobs.selectors import when_from_ms
from image_api.tenancy import Caller


def dead_letters_list(*, viewer: Caller, offset: int, limit: int) -> dict[str, Any]:
    """A page of the dead letters ``viewer`` may see: all for an admin; for a tenant, those of
    its jobs among the newest TENANT_SCAN_LIMIT (``truncated`` when there are more)."""
    truncated = False
    if viewer.scope is None:
        total, items = broker().dead_letters(offset=offset, limit=limit)
    else:
        total, items, truncated = broker().tenant_dead_letters(
            viewer.scope, offset=offset, limit=limit)
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "truncated": truncated,
        "items": [
            {
                "task_id": item["id"],
                "job_id": item["job_id"],
                "index": item.get("index"),
                "image": item.get("image"),
                "attempts": item.get("attempts"),
                "error": item.get("error"),
                "worker": item.get("worker"),
                "dead_at": when_from_ms(item["dead_at_ms"]),
            }
            for item in items
        ],
    }
