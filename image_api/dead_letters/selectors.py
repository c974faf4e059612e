"""Reads: a page of dead letters, newest first."""

from __future__ import annotations

from typing import Any

from image_api.broker import broker
from image_api.jobs.selectors import when_from_ms


def dead_letters_list(*, offset: int, limit: int) -> dict[str, Any]:
    total, items = broker().dead_letters(offset=offset, limit=limit)
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
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
