"""What a worker does with a task message, and how failures are classified.

``kind`` selects the work:
- ``image`` (what the API submits): run the pipeline on one stored image; the output path is
  derived from the job id, index, image id and format (a message never names a path).
- ``noop``: nothing; used by the queue-overhead benchmark.
- ``sleep``: wait ``seconds``; used by fault-tolerance tests and demos to hold a task in hand.
"""

from __future__ import annotations

import threading
from typing import Any

from distributed.messages import TaskMessage
from imaging.codecs import ImageError
from imaging.pipeline import PipelineError
from imaging.processing import Limits, process_image


class PermanentTaskError(Exception):
    """The task can never succeed as submitted: dead-letter it without retrying."""


class Interrupted(Exception):
    """The task was stopped by a cold shutdown: record nothing, let its lease expire."""


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
    message: TaskMessage, *, media_root: str, max_pixels: int, stop: threading.Event
) -> dict[str, Any]:
    """Run one task; returns the image fields of its result (none for noop and sleep).

    ``stop`` is the cold-shutdown flag: a sleep task ends at once with :class:`Interrupted`."""
    if message.kind == "image":
        if message.image_id is None:  # TaskMessage refuses this; kept for the type checker
            raise PermanentTaskError("an image task needs an image_id")
        return process_image(
            media_root=media_root,
            image_id=message.image_id,
            steps_json=list(message.steps),
            job_id=message.job_id,
            index=message.index,
            output_format=message.output_format,
            quality=message.quality,
            limits=Limits(max_pixels=max_pixels),
        ).to_dict()
    if message.kind == "sleep":
        if stop.wait(message.seconds):
            raise Interrupted(f"stopped after less than {message.seconds} s")
        return {}
    if message.kind == "noop":
        return {}
    raise PermanentTaskError(f"unknown task kind {message.kind!r}")
