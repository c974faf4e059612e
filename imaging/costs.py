"""The cost model: what a task will cost, computed from sizes and parameters before any work.

Every filter declares its cost here as nanoseconds of one core per pixel (and per channel
where that matters), calibrated on the reference machine with OpenCV single-threaded
(``bench/bench_imaging.py --calibrate``). The model walks the pipeline the way the image
would go (sizes after resize and rotate, one channel after a grey result) and adds decoding
and encoding, so a request can be refused before anything is stored or enqueued:

- a step whose result would exceed the pixel cap: ``intermediate_too_large`` (400);
- a task whose estimated cost exceeds ``MAX_TASK_COST`` (milliseconds of one core):
  ``pipeline_too_expensive`` (400), naming the step that crosses it.

Estimates err on the high side (large blur kernels leave the cache, so their cost grows faster
than their size); the time limit still stops a task the model underestimated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from imaging.filters import FILTERS
from imaging.pipeline import PipelineError

__all__ = ["Estimate", "Frame", "check_budget", "estimate", "input_frame"]


class StepLike(Protocol):
    @property
    def filter(self) -> str: ...

    @property
    def params(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Frame:
    """An image's size and channel count (1 grey, 3 BGR, 4 BGRA)."""

    width: int
    height: int
    channels: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def bytes(self) -> int:
        return self.pixels * self.channels

    @property
    def alpha(self) -> bool:
        return self.channels == 4


@dataclass(frozen=True)
class Estimate:
    """Per-step costs (ms), the total with decoding and encoding, and the largest frame."""

    decode_ms: float
    step_ms: tuple[float, ...]
    encode_ms: float
    frames: tuple[Frame, ...]  # the input, then the result of each step

    @property
    def total_ms(self) -> float:
        return self.decode_ms + sum(self.step_ms) + self.encode_ms

    @property
    def peak_bytes(self) -> int:
        """Two frames side by side (a step's input and its result) at the largest step."""
        sizes = [f.bytes for f in self.frames]
        return max((a + b for a, b in itertools.pairwise(sizes)), default=sizes[0])


# Decoding and encoding, ns per pixel per channel.
DECODE_NS = {"jpeg": 6.0, "png": 20.0, "webp": 25.0, "bmp": 2.0, "tiff": 20.0}
ENCODE_NS = {"jpeg": 5.0, "png": 30.0, "webp": 25.0}

Cost = Callable[[Frame, Frame, Mapping[str, Any]], float]  # (input, output, params) -> ns


def _per_channel(ns: float) -> Cost:
    return lambda src, out, params: src.pixels * src.channels * ns


def _grey(ns_per_pixel: float) -> Cost:
    # BT.601 conversion (0.5 ns per channel) plus the work on the grey plane.
    return lambda src, out, params: src.pixels * (0.5 * src.channels + ns_per_pixel)


def _blur(src: Frame, out: Frame, params: Mapping[str, Any]) -> float:
    radius = float(params.get("radius", 2.0))
    if radius == 0:
        return src.bytes * 0.3
    taps = 2 * math.ceil(3 * radius) + 1
    return src.bytes * 0.6 * taps * (1 + taps / 150)


def _resize(src: Frame, out: Frame, params: Mapping[str, Any]) -> float:
    return out.bytes * 3.0 + src.bytes * 0.5


def _rotate(src: Frame, out: Frame, params: Mapping[str, Any]) -> float:
    quarter = float(params.get("degrees", 90.0)) % 90.0 == 0
    return out.bytes * (4.0 if quarter else 12.0)


COSTS: dict[str, Cost] = {
    "grayscale": _grey(0.0),
    "blur": _blur,
    "sharpen": _per_channel(2.5),
    "edges": _grey(4.0),
    "brightness": _per_channel(1.5),
    "contrast": _per_channel(2.0),
    "resize": _resize,
    "rotate": _rotate,
    "flip": _per_channel(0.5),
    "sepia": lambda src, out, params: src.pixels * 3.6,
    "threshold": _grey(1.0),
    "invert": _per_channel(1.5),
}
GREY_RESULT = ("grayscale", "edges", "threshold")


def input_frame(width: int, height: int, fmt: str, mode: str | None = None) -> Frame:
    """The decoded frame of a stored image. Without its mode, assume the most channels the
    format can carry (JPEG 3, the others 4): the estimate errs high."""
    if mode is not None:
        channels = 1 if mode in ("1", "L", "I", "I;16", "F") else \
            4 if mode in ("RGBA", "LA", "PA", "RGBa", "La") else 3
    else:
        channels = 3 if fmt == "jpeg" else 4
    return Frame(width, height, channels)


def _output_frame(spec: Any, step: StepLike, src: Frame) -> Frame:
    width, height = src.width, src.height
    if spec.output_size is not None:
        width, height = spec.output_size(width, height, step.params)
    channels = src.channels
    if step.filter in GREY_RESULT:
        channels = 4 if src.alpha else 1
    elif step.filter == "sepia":
        channels = 4 if src.alpha else 3
    return Frame(width, height, channels)


def estimate(
    steps: Sequence[StepLike], source: Frame, *, input_format: str, output_format: str,
) -> Estimate:
    """Walk ``steps`` from ``source`` without touching pixels (each step's output size from
    the filter registry)."""
    frames = [source]
    step_ns = []
    for step in steps:
        src = frames[-1]
        out = _output_frame(FILTERS[step.filter], step, src)
        step_ns.append(COSTS[step.filter](src, out, step.params))
        frames.append(out)
    last = frames[-1]
    return Estimate(
        decode_ms=source.bytes * DECODE_NS.get(input_format, 20.0) / 1e6,
        step_ms=tuple(ns / 1e6 for ns in step_ns),
        encode_ms=last.bytes * ENCODE_NS.get(output_format, 30.0) / 1e6,
        frames=tuple(frames),
    )


def check_budget(
    steps: Sequence[StepLike], source: Frame, *, input_format: str, output_format: str,
    max_pixels: int, max_cost_ms: float,
) -> Estimate:
    """Refuse, before any work, a pipeline that would make an image over ``max_pixels`` or
    whose estimated cost (``imaging.costs``) exceeds ``max_cost_ms``; the estimate otherwise."""
    cost = estimate(steps, source, input_format=input_format, output_format=output_format)
    for index, (step, frame) in enumerate(zip(steps, cost.frames[1:], strict=True)):
        if frame.pixels > max_pixels:
            raise PipelineError(
                f"{step.filter} would make a {frame.width}x{frame.height} image, over the "
                f"limit of {max_pixels} pixels",
                step=index, filter=step.filter, allowed={"max_pixels": max_pixels},
                code="intermediate_too_large",
            )
    running = cost.decode_ms
    for index, (step, step_ms) in enumerate(zip(steps, cost.step_ms, strict=True)):
        running += step_ms
        if running + cost.encode_ms > max_cost_ms:
            raise PipelineError(
                f"the pipeline is estimated at {cost.total_ms:.0f} ms of CPU for this "
                f"{source.width}x{source.height} image, over the limit of {max_cost_ms:.0f} "
                f"ms; step {index} ({step.filter}) crosses it",
                step=index, filter=step.filter,
                allowed={"max_task_cost_ms": max_cost_ms,
                         "estimated_ms": round(cost.total_ms)},
                code="pipeline_too_expensive",
            )
    return cost
