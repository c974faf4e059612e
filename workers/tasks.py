"""What a worker does with a task payload, and how failures are classified.

Payloads are JSON objects. ``kind`` selects the work:
- ``image`` (default, what the API submits): run the pipeline on one stored image.
- ``noop``: nothing; used by the queue-overhead benchmark.
- ``sleep``: wait ``seconds``; used by fault-tolerance tests and demos to hold a task in hand.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Any

from imaging.codecs import ImageError
from imaging.pipeline import PipelineError
from imaging.processing import Limits, process_image


class PermanentTaskError(Exception):
    """The task can never succeed as submitted: dead-letter it without retrying."""


# Errors that retrying cannot fix. Everything else (I/O errors, memory, the unexpected) is
# treated as transient and retried with backoff up to MAX_RETRIES.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    PermanentTaskError,
    ImageError,
    PipelineError,
    KeyError,
    FileNotFoundError,
    ValueError,
    TypeError,
)


def error_kind(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return str(code) if code else type(exc).__name__


def perform(
    payload: dict[str, Any],
    *,
    media_root: str,
    max_pixels: int,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Run one task; returns the result record stored with the task."""
    kind = payload.get("kind", "image")
    if kind == "image":
        result = process_image(
            media_root=media_root,
            image_id=payload["image_id"],
            steps_json=payload["steps"],
            job_id=payload["job_id"],
            index=int(payload["index"]),
            output_format=payload.get("output_format"),
            quality=int(payload.get("quality", 90)),
            limits=Limits(max_pixels=max_pixels),
        )
        return asdict(result)
    if kind == "noop":
        return {}
    if kind == "sleep":
        seconds = float(payload.get("seconds", 1.0))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))
        return {"slept_s": seconds}
    raise PermanentTaskError(f"unknown task kind {kind!r}")
