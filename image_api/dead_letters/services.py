"""Writes: re-queue or discard dead letters."""

from __future__ import annotations

from image_api.broker import broker
from image_api.errors import ApplicationError


def dead_letters_act(*, action: str, task_ids: list[str] | None) -> int:
    """Re-queue or discard dead letters (``task_ids`` None = all); the number changed."""
    if action == "requeue":
        return broker().requeue_dead_letters(task_ids)
    if action == "discard":
        return broker().discard_dead_letters(task_ids)
    raise ApplicationError(f"Unknown action {action!r}.", code="invalid_action",
                           extra={"allowed": ["requeue", "discard"]})
