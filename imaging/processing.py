"""Process one image of a job: the function every execution mode calls.

Threads, the process pool and the Redis worker all run ``process_image`` with plain,
picklable arguments. It raises ``ImageError`` / ``PipelineError`` for permanent failures
(retrying cannot help) and ``OSError`` for transient ones (storage hiccups).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import cv2

from imaging.codecs import (
    ImageError,
    decode_image,
    encode_image,
    output_format_for,
    sniff_format,
)
from imaging.pipeline import run_pipeline, steps_from_json
from imaging.storage import Storage

__all__ = ["ProcessResult", "limit_native_threads", "process_image"]


@dataclass(frozen=True)
class ProcessResult:
    """Where the result went and what it cost; ``to_dict()`` gives its JSON form."""

    output_key: str
    format: str
    width: int
    height: int
    bytes: int
    timings: list[dict]
    total_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def limit_native_threads(n: int = 1) -> None:
    """Cap OpenCV's own thread pool (call once per worker process, not at import)."""
    cv2.setNumThreads(n)


def process_image(
    *,
    media_root: str,
    image_id: str,
    steps_json: list[dict],
    output_key: str | None = None,
    job_id: str,
    index: int,
    output_format: str | None,
    quality: int,
    max_pixels: int,
) -> ProcessResult:
    """Read ``image_id`` from storage, run the steps, write the encoded result.

    The output goes to ``output_key`` when given, else to ``Storage.output_key(job_id,
    index, image_id, format)``. Raises ImageError (unknown image: 404 image_not_found;
    undecodable: 400/413/415), PipelineError (invalid steps), OSError (storage failure).
    """
    started = time.perf_counter()
    steps = steps_from_json(steps_json)  # cheap, so bad steps fail before any I/O
    storage = Storage(media_root)
    try:
        path = storage.image_path(image_id)
    except KeyError:
        raise ImageError(
            f"unknown image {image_id!r}", status=404, code="image_not_found"
        ) from None
    data = path.read_bytes()
    input_format = sniff_format(data) or ""
    fmt = output_format_for(input_format, output_format)
    image = decode_image(data, max_pixels=max_pixels)
    output, timings = run_pipeline(image, steps, max_pixels=max_pixels)
    encoded = encode_image(output, fmt, quality=quality)
    key = output_key if output_key is not None else storage.output_key(job_id, index, image_id, fmt)
    storage.write_key(key, encoded)
    height, width = output.shape[:2]
    return ProcessResult(
        output_key=key,
        format=fmt,
        width=width,
        height=height,
        bytes=len(encoded),
        timings=timings,
        total_ms=(time.perf_counter() - started) * 1000.0,
    )
