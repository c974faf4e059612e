"""The function the thread and process pools run: one image, errors returned as data.

No Django here: in the multiprocessing mode this module is imported by the pool's child
processes. Exceptions are turned into plain dicts inside the worker so that nothing
unpicklable (or huge) crosses the process boundary and one bad image never breaks the pool.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

from imaging.codecs import ImageError
from imaging.pipeline import PipelineError, TimeLimitExceeded
from imaging.processing import configure_process, process_image
from imaging.storage import InsufficientStorage

logger = logging.getLogger(__name__)

# At most LOCAL_MAX_CONCURRENT_IMAGES images decoded at once in this pool (a thread
# semaphore, or a multiprocessing one shared by the pool's processes), so one request cannot
# take the API process past its memory budget.
_gate: Any = None


def init_pool_worker(gate: Any = None) -> None:
    """Pool initializer: one OpenCV thread per pool worker, so N workers use N cores; the
    pool's image gate."""
    global _gate
    configure_process(1)
    _gate = gate


def failure(code: str, message: str) -> dict[str, Any]:
    return {"status": "failed", "error": {"code": code, "message": message}}


def run_one(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run `imaging.processing.process_image(**kwargs)`.

    Returns {"status": "completed", **ProcessResult fields} or
    {"status": "failed", "error": {"code", "message"}}.
    """
    try:
        with _gate if _gate is not None else contextlib.nullcontext():
            result = process_image(**kwargs)
    except ImageError as exc:
        return failure(exc.code, str(exc))
    except PipelineError as exc:
        return failure(exc.code, str(exc))
    except TimeLimitExceeded as exc:
        return failure(exc.code, f"{exc} (TASK_TIME_LIMIT_SECONDS)")
    except InsufficientStorage as exc:  # below MIN_FREE_DISK_MB: nothing of it written
        return failure(exc.code, f"{exc} (MIN_FREE_DISK_MB)")
    except KeyError:
        return failure("image_not_found", f"Image {kwargs.get('image_id')!r} is not in storage.")
    except OSError as exc:
        # Storage paths stay on the server: report the errno, not the file name.
        logger.warning("storage error on %s: %s", kwargs.get("image_id"), exc)
        reason = exc.strerror or type(exc).__name__
        return failure("storage_error", f"Could not read or write image storage: {reason}.")
    except MemoryError:
        return failure("out_of_memory", "Not enough memory to process this image.")
    except Exception as exc:  # one bad image must not take the batch down
        logger.exception("processing failed for %s", kwargs.get("image_id"))
        return failure("processing_error", f"{type(exc).__name__}: {exc}")
    return {"status": "completed", "error": None, **dataclasses.asdict(result)}
