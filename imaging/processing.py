"""Process one image of a job: the function every execution mode calls.

Threads, the process pool and the Redis worker all run ``process_image`` with plain,
picklable arguments. It raises ``ImageError`` / ``PipelineError`` for permanent failures
(retrying cannot help) and ``OSError`` for transient ones (storage hiccups).
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import asdict, dataclass

import cv2

from imaging.codecs import (
    DEFAULT_MAX_JPEG_SCANS,
    Header,
    ImageError,
    decode,
    encode_image,
    output_format_for,
    read_header,
)
from imaging.costs import check_budget, input_frame
from imaging.geometry import resize_size
from imaging.metadata import Metadata, to_srgb
from imaging.pipeline import Step, needs_only_luma, run_pipeline, steps_from_json
from imaging.storage import Storage
from imaging.thumbnails import make_thumbnail

__all__ = [
    "Limits",
    "ProcessResult",
    "configure_process",
    "keep_frames_on_the_heap",
    "limit_native_threads",
    "process_image",
    "shrink_on_load",
]


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
    # Bytes the output and its preview added to the storage (less what they replaced): what
    # the caller counts in the tenant's usage.
    stored_bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def limit_native_threads(n: int = 1) -> None:
    """Cap OpenCV's own thread pool (call once per worker process, not at import)."""
    cv2.setNumThreads(n)


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_FRAME_HEAP_BYTES = 32 * 1024 * 1024  # glibc's ceiling for the mmap threshold on 64-bit


def keep_frames_on_the_heap() -> bool:
    """Let glibc reuse freed image frames instead of returning each to the kernel.

    A pipeline allocates and frees a few frames of several MiB per image. Above glibc's mmap
    threshold each is a fresh mmap, unmapped when freed and page-faulted in again for the next
    image: measured here, that costs a process's main thread about as much as the filters.
    Frames up to 32 MiB (a 10 Mpx BGR image) then come from the heap and stay there;
    larger ones are still mapped and returned. False where glibc's mallopt is missing."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, _FRAME_HEAP_BYTES)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, 8 * _FRAME_HEAP_BYTES))


def configure_process(threads: int = 1) -> None:
    """Set up a process that will run images: ``threads`` OpenCV threads, frames kept on the
    heap. Call once, in each worker, task or pool process."""
    limit_native_threads(threads)
    keep_frames_on_the_heap()


@dataclass(frozen=True)
class Limits:
    """The budget of one image: checked from its header and the cost model before decoding."""

    max_pixels: int
    max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS
    max_cost_ms: float = float("inf")
    time_limit_s: float | None = None  # checked between steps (a worker also kills)


def shrink_on_load(steps: list[Step], header: Header) -> tuple[list[Step], tuple[int, int] | None]:
    """When the pipeline starts by making the image smaller, the size to decode at (JPEG DCT
    scaling) and the steps with that first resize made absolute (a ``scale`` would otherwise
    apply to the already reduced image)."""
    if not steps or steps[0].filter != "resize":
        return steps, None
    width, height = header.size
    target = resize_size(width, height, steps[0].params)
    if target[0] > width or target[1] > height:
        return steps, None
    first = Step("resize", {**steps[0].params, "width": target[0], "height": target[1],
                            "scale": None})
    return [first, *steps[1:]], target


def process_image(
    *,
    media_root: str,
    image_id: str,
    steps_json: list[dict],
    job_id: str,
    index: int,
    output_format: str | None,
    quality: int,
    limits: Limits,
    effort: str = "balanced",
    keep_metadata: bool = False,
    colour_profile: str = "keep",
    tenant: str | None = None,
    min_free_bytes: int = 0,
) -> ProcessResult:
    """Read ``image_id`` from storage, run the steps, write the encoded result at the key the
    storage derives from job id, index and image id (never a path from outside), and its
    WebP preview (``imaging.thumbnails``) beside it.

    The header and the cost model are checked before decoding. Raises ImageError (unknown
    image: 404 image_not_found; undecodable or over budget: 400/413/415), PipelineError
    (invalid steps, intermediate_too_large, pipeline_too_expensive), OSError (storage).
    The output keeps the input's ICC profile (``colour_profile="keep"``) or is converted to
    sRGB (``"srgb"``); EXIF is dropped unless ``keep_metadata`` (``imaging.metadata``).
    ``tenant``: whose usage the job's outputs count in (marked beside them; the caller
    counts ``stored_bytes``). Writing below the free-space floor ``min_free_bytes`` raises
    InsufficientStorage (an OSError: transient) before anything is written.
    """
    started = time.perf_counter()
    deadline = time.monotonic() + limits.time_limit_s if limits.time_limit_s else None
    steps = steps_from_json(steps_json)  # cheap, so bad steps fail before any I/O
    storage = Storage(media_root, min_free_bytes=min_free_bytes)
    try:
        path = storage.image_path(image_id)
    except KeyError:
        raise ImageError(
            f"unknown image {image_id!r}", status=404, code="image_not_found"
        ) from None
    data = path.read_bytes()
    header = read_header(data, max_pixels=limits.max_pixels, max_jpeg_scans=limits.max_jpeg_scans)
    fmt = output_format_for(header.format, output_format)
    width, height = header.size
    check_budget(steps, input_frame(width, height, header.format, header.mode),
                 input_format=header.format, output_format=fmt,
                 max_pixels=limits.max_pixels, max_cost_ms=limits.max_cost_ms)
    steps, reduce_to = shrink_on_load(steps, header)
    # Grey planning: a pipeline whose result is grey, from an image without alpha, starts
    # from the grey level (imaging.pipeline.needs_only_luma).
    luma = header.mode in ("RGB", "L") and needs_only_luma(steps)
    image = decode(data, header, reduce_to=reduce_to, luma=luma)
    metadata = header.metadata.keep(exif=keep_metadata)
    if colour_profile == "srgb":
        image = to_srgb(image, metadata.icc_profile)
        metadata = Metadata(None, metadata.exif)
    output, timings = run_pipeline(image, steps, max_pixels=limits.max_pixels,
                                   deadline=deadline)
    del image
    encoded = encode_image(output, fmt, quality=quality, effort=effort, metadata=metadata)
    key = storage.output_key(job_id, index, image_id, fmt)
    # The preview is made from the frame in memory (no decode of what was just written) and
    # written after the output: a result with a thumbnail always has its output. Both are
    # ready before the first write, and the floor is checked for both at once.
    thumbnail = make_thumbnail(output)
    storage.check_free(len(encoded) + len(thumbnail))
    if tenant is not None:
        storage.mark_outputs(job_id, tenant)
    stored = storage.write_key(key, encoded)
    stored += storage.write_key(storage.thumbnail_key(job_id, index, image_id), thumbnail)
    out_height, out_width = output.shape[:2]
    return ProcessResult(
        output_key=key,
        format=fmt,
        width=out_width,
        height=out_height,
        bytes=len(encoded),
        timings=timings,
        total_ms=(time.perf_counter() - started) * 1000.0,
        stored_bytes=stored,
    )
