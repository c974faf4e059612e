"""What a worker does with a task message, and how failures are classified.

``kind`` selects the work:
- ``image`` (what the API submits): run the pipeline on one stored image; the output path is
  derived from the job id, index, image id and format (a message never names a path).
- ``noop``: nothing; used by the queue-overhead benchmark.
- ``sleep``: wait ``seconds``; used by fault-tolerance tests and demos to hold a task in hand.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from common.storage_settings import MIB
from distributed.messages import TaskMessage
from imaging.codecs import ImageError
from imaging.pipeline import PipelineError, TimeLimitExceeded
from imaging.processing import Limits, process_image
from workers.sandbox import Cancelled, SandboxError, TaskFailed

if TYPE_CHECKING:
    from workers.sandbox import Sandbox
    from workers.settings import WorkerSettings


class PermanentTaskError(Exception):
    """The task can never succeed as submitted: dead-letter it without retrying."""


class Interrupted(Exception):
    """The task was stopped by a cold shutdown: record nothing, let its lease expire."""


# Errors that retrying cannot fix. Everything else (I/O errors, memory, the unexpected) is
# treated as transient and retried with backoff up to MAX_RETRIES: among them
# imaging.storage.InsufficientStorage (an output write refused below MIN_FREE_DISK_MB), which
# retention and deletes can cure.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    PermanentTaskError,
    ImageError,
    PipelineError,
    TimeLimitExceeded,
    KeyError,
    FileNotFoundError,
    ValueError,
    TypeError,
)


def error_kind(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return str(code) if code else type(exc).__name__


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying cannot help: the task's own verdict when it failed in its process."""
    if isinstance(exc, (TaskFailed, SandboxError)):
        return exc.permanent
    return isinstance(exc, PERMANENT_ERRORS)


def limits_of(settings: WorkerSettings) -> Limits:
    return Limits(
        max_pixels=settings.max_image_pixels, max_jpeg_scans=settings.max_jpeg_scans,
        max_cost_ms=settings.max_task_cost_ms, time_limit_s=settings.task_time_limit_s,
    )


def run_in_child(
    *, payload: str, media_root: str, limits: Limits, colour_profile: str,
    min_free_bytes: int = 0,
) -> dict[str, Any]:
    """The work of an ``image`` or ``sleep`` task, in the worker's task process
    (``workers.sandbox``). The message was validated by the worker; it is parsed again here
    from the same text, so nothing but JSON crosses the process boundary inwards."""
    message = TaskMessage.from_json(payload)
    if message.kind == "sleep":
        time.sleep(message.seconds)
        return {}
    if message.kind != "image" or message.image_id is None:
        raise PermanentTaskError(f"a task process runs image and sleep tasks, not "
                                 f"{message.kind!r}")
    return process_image(
        media_root=media_root,
        image_id=message.image_id,
        steps_json=list(message.steps),
        job_id=message.job_id,
        index=message.index,
        output_format=message.output_format,
        quality=message.quality,
        limits=limits,
        effort=message.effort,
        keep_metadata=message.keep_metadata,
        colour_profile=colour_profile,
        tenant=message.tenant,
        min_free_bytes=min_free_bytes,
    ).to_dict()


def perform(
    message: TaskMessage, payload: str, *, settings: WorkerSettings, sandbox: Sandbox,
    stop: threading.Event,
) -> dict[str, Any]:
    """Run one task; returns the image fields of its result (none for noop and sleep), with
    ``stored_bytes``: what its outputs added to the storage, for the tenant's usage.

    Image and sleep tasks run in ``sandbox`` (a child process killed past the time limit,
    capped in memory); a no-op runs here. ``stop`` is the cold-shutdown flag: the task is
    then abandoned with :class:`Interrupted`."""
    if message.kind == "noop":
        return {}
    if message.kind not in ("image", "sleep"):
        raise PermanentTaskError(f"unknown task kind {message.kind!r}")
    request = {"payload": payload, "media_root": settings.media_root,
               "limits": limits_of(settings), "colour_profile": settings.colour_profile,
               "min_free_bytes": settings.min_free_disk_mb * MIB}
    try:
        fields: dict[str, Any] = sandbox.run(
            request, time_limit_s=settings.task_time_limit_s, cancel=stop)
    except Cancelled as exc:
        raise Interrupted(str(exc)) from exc
    return fields
