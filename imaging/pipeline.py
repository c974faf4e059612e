"""Filter pipelines: parse and validate a request's filter list, then run it over an image.

Two request forms are accepted (never both in one request)::

    {"filters": ["sharpen", "edges"], "filter_params": {"sharpen": {"intensity": 3}}}
    {"steps": [{"filter": "blur", "params": {"radius": 2}}, {"filter": "blur"}]}

Validation produces complete ``Step`` objects: every declared parameter present, defaults
filled in, values coerced to the declared type. Anything wrong raises ``PipelineError`` with
the 0-based step index, the filter, the parameter and what would have been allowed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imaging.filters import FILTERS, FilterSpec, Param, ParamError

__all__ = [
    "MAX_STEPS",
    "PipelineError",
    "Step",
    "TimeLimitExceeded",
    "needs_only_luma",
    "parse_pipeline",
    "run_pipeline",
    "steps_from_json",
    "steps_to_json",
]

MAX_STEPS = 50
_STEP_KEYS = ("filter", "params")


@dataclass(frozen=True)
class Step:
    """One validated pipeline step; ``params`` holds every declared parameter."""

    filter: str
    params: dict[str, Any]


class PipelineError(ValueError):
    """An invalid pipeline (a permanent error: retrying cannot fix it)."""

    def __init__(
        self,
        message: str,
        *,
        step: int | None = None,
        filter: str | None = None,  # shadows the builtin: part of the contract
        param: str | None = None,
        allowed: Any = None,
        code: str = "invalid_pipeline",
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.step = step
        self.filter = filter
        self.param = param
        self.allowed = allowed

    def to_dict(self) -> dict:
        """JSON error body: ``{"error": code, "message", "step", "filter", ...}``; the code is
        invalid_pipeline, intermediate_too_large or pipeline_too_expensive."""
        return {
            "error": self.code,
            "message": self.message,
            "step": self.step,
            "filter": self.filter,
            "param": self.param,
            "allowed": self.allowed,
        }


# --- parsing ------------------------------------------------------------------------------


def parse_pipeline(data: Mapping[str, Any]) -> list[Step]:
    """Validate either request form into complete steps; other keys of ``data`` are ignored."""
    if not isinstance(data, Mapping):
        raise PipelineError("the pipeline must be a JSON object")
    has_steps = "steps" in data
    has_filters = "filters" in data or "filter_params" in data
    if has_steps and has_filters:
        raise PipelineError(
            "give either 'steps' or 'filters'/'filter_params', not both",
            allowed=["steps", "filters"],
        )
    if has_steps:
        raw = _raw_steps(data["steps"])
    elif "filters" in data:
        raw = _raw_seed_steps(data["filters"], data.get("filter_params"))
    else:
        raise PipelineError("missing 'filters' (or 'steps')", allowed=["steps", "filters"])
    return [_validate_step(index, name, params) for index, (name, params) in enumerate(raw)]


def _check_length(items: Any, key: str) -> list:
    if not isinstance(items, list):
        raise PipelineError(f"'{key}' must be a list")
    if len(items) > MAX_STEPS:
        raise PipelineError(
            f"too many steps: {len(items)} (at most {MAX_STEPS})",
            allowed={"maximum": MAX_STEPS},
        )
    return items


def _raw_steps(steps: Any) -> list[tuple[Any, Any]]:
    raw = []
    for index, item in enumerate(_check_length(steps, "steps")):
        if not isinstance(item, Mapping):
            raise PipelineError(
                'each step must be an object like {"filter": ..., "params": {...}}', step=index
            )
        extra = sorted(str(key) for key in item if key not in _STEP_KEYS)
        if extra:
            raise PipelineError(
                f"unknown step key {extra[0]!r}", step=index, allowed=list(_STEP_KEYS)
            )
        if "filter" not in item:
            raise PipelineError("step is missing 'filter'", step=index, allowed=list(FILTERS))
        raw.append((item["filter"], item.get("params")))
    return raw


def _raw_seed_steps(filters: Any, filter_params: Any) -> list[tuple[Any, Any]]:
    names = _check_length(filters, "filters")
    if filter_params is None:
        filter_params = {}
    if not isinstance(filter_params, Mapping):
        raise PipelineError("'filter_params' must be an object keyed by filter name")
    for key in filter_params:
        if key not in names:
            raise PipelineError(
                f"filter_params names {key!r}, which is not in 'filters'",
                filter=str(key),
                allowed=[name for name in names if isinstance(name, str)],
            )
    return [(name, filter_params.get(name) if isinstance(name, str) else None) for name in names]


def _validate_step(index: int, name: Any, params: Any) -> Step:
    if not isinstance(name, str) or name not in FILTERS:
        raise PipelineError(
            f"unknown filter {name!r}", step=index, filter=_text(name), allowed=list(FILTERS)
        )
    spec = FILTERS[name]
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise PipelineError(f"params of {name} must be an object", step=index, filter=name)
    declared = {param.name: param for param in spec.params}
    for key in params:
        if key not in declared:
            raise PipelineError(
                f"{name} has no parameter {key!r}",
                step=index,
                filter=name,
                param=_text(key),
                allowed=list(declared),
            )
    values = {}
    for param in spec.params:
        value = params.get(param.name, param.default)
        try:
            values[param.name] = coerce_param(param, value)
        except ParamError as exc:
            raise PipelineError(
                f"{name}.{param.name}: {exc.message}",
                step=index,
                filter=name,
                param=param.name,
                allowed=exc.allowed,
            ) from None
    _cross_check(spec, values, index)
    return Step(filter=name, params=values)


def _cross_check(spec: FilterSpec, values: dict[str, Any], index: int) -> None:
    if spec.validate is None:
        return
    try:
        spec.validate(values)
    except ParamError as exc:
        raise PipelineError(
            f"{spec.name}: {exc.message}",
            step=index,
            filter=spec.name,
            param=exc.param,
            allowed=exc.allowed,
        ) from None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) or value is None else repr(value)


def coerce_param(param: Param, value: Any) -> Any:
    """Check one value against its declaration and return it in the declared type.

    Strict JSON types: strings are never converted (``"3"`` is not a number), ``bool`` is not
    a number, NaN and infinities are refused, and integers of any size are range-checked
    exactly. A float parameter accepts ints (3 -> 3.0); an int parameter accepts a float only
    when it is integral (2.0 -> 2). Raises ``ParamError``.
    """
    if value is None:
        if param.nullable:
            return None
        raise ParamError("must not be null", allowed=_type_hint(param))
    if param.type == "bool":
        if not isinstance(value, bool):
            raise ParamError("must be true or false", allowed=[True, False])
        return value
    if param.type == "choice":
        if not isinstance(value, str) or value not in (param.choices or ()):
            raise ParamError(
                f"must be one of {list(param.choices or ())}", allowed=list(param.choices or ())
            )
        return value
    return _number(param, value)


def _number(param: Param, value: Any) -> int | float:
    # Python ints are unbounded: compare them exactly and convert only once they are known to
    # be in range, so a 400-digit integer is "out of range", not an OverflowError.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParamError(f"must be a number ({param.type})", allowed=_type_hint(param))
    if isinstance(value, float) and not math.isfinite(value):
        raise ParamError("must be a finite number", allowed=_type_hint(param))
    if (param.minimum is not None and value < param.minimum) or (
        param.maximum is not None and value > param.maximum
    ):
        raise ParamError(
            f"{_show(value)} is out of range [{param.minimum}, {param.maximum}]",
            allowed={"minimum": param.minimum, "maximum": param.maximum},
        )
    try:
        if param.type == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ParamError("must be a whole number", allowed=_type_hint(param))
            return int(value)
        return float(value)
    except OverflowError:  # only reachable for an unbounded parameter
        raise ParamError(f"{_show(value)} is too large", allowed=_type_hint(param)) from None


def _show(value: int | float) -> str:
    """A number for a message: huge integers are described, not printed digit by digit."""
    if isinstance(value, int) and abs(value) >= 10**21:
        try:
            return f"a {len(str(abs(value)))}-digit number"
        except ValueError:  # past sys.get_int_max_str_digits()
            return f"a {value.bit_length()}-bit number"
    return str(value)


def _type_hint(param: Param) -> dict[str, Any]:
    hint: dict[str, Any] = {"type": param.type}
    if param.minimum is not None or param.maximum is not None:
        hint.update(minimum=param.minimum, maximum=param.maximum)
    if param.nullable:
        hint["nullable"] = True
    return hint


# --- serialisation ------------------------------------------------------------------------


def steps_to_json(steps: Sequence[Step]) -> list[dict]:
    """Plain JSON form: ``[{"filter": name, "params": {...}}, ...]``."""
    return [{"filter": step.filter, "params": dict(step.params)} for step in steps]


def steps_from_json(data: list[dict]) -> list[Step]:
    """Re-validate the JSON form (same rules as ``parse_pipeline({"steps": data})``)."""
    return parse_pipeline({"steps": data})


# --- running ------------------------------------------------------------------------------


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as a filter input (HxWx1 becomes HxW); ValueError for anything else."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("image must be a uint8 NumPy array")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise ValueError(f"image must be HxW, HxWx3 or HxWx4, not {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("image is empty")
    return image


class TimeLimitExceeded(Exception):
    """The image ran past its wall-time limit (checked between steps)."""

    code = "time_limit_exceeded"


def run_pipeline(
    image: np.ndarray, steps: Sequence[Step], *, max_pixels: int | None = None,
    deadline: float | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Apply ``steps`` in order. Returns the output and ``[{"filter", "ms"}, ...]`` per step.

    With ``max_pixels``, a step that would produce a larger image (resize, rotate) raises
    ``PipelineError`` before allocating it; past ``deadline`` (``time.monotonic()``), the next
    step raises ``TimeLimitExceeded`` instead of starting.
    """
    current = check_image(image)
    timings = []
    for index, step in enumerate(steps):
        spec = FILTERS.get(step.filter)
        if spec is None:
            raise PipelineError(
                f"unknown filter {step.filter!r}",
                step=index,
                filter=step.filter,
                allowed=list(FILTERS),
            )
        if max_pixels is not None and spec.output_size is not None:
            height, width = current.shape[:2]
            out_w, out_h = spec.output_size(width, height, step.params)
            if out_w * out_h > max_pixels:
                raise PipelineError(
                    f"{step.filter} would make a {out_w}x{out_h} image, over the limit of "
                    f"{max_pixels} pixels",
                    step=index,
                    filter=step.filter,
                    allowed={"max_pixels": max_pixels},
                )
        if deadline is not None and time.monotonic() > deadline:
            raise TimeLimitExceeded(
                f"the time limit ran out before step {index} ({step.filter})")
        started = time.perf_counter()
        current = spec.func(current, **step.params)
        timings.append({"filter": step.filter, "ms": (time.perf_counter() - started) * 1000.0})
    return current, timings


# --- planning -----------------------------------------------------------------------------

# Before the grey result, only exact pixel moves: anything that computes new values (a blur,
# a resize, a sharpen) rounds differently on the grey level than on each channel, and an edge
# map after it differs on a tenth of its edge pixels or more. A JPEG's own Y channel and
# OpenCV's conversion of its colours differ by rounding alone (Canny agrees on 98.5 % of edge
# pixels or more: tests/imaging/test_processing.py).
GREY_RESULT = frozenset({"grayscale", "edges", "threshold"})


def _moves_pixels_only(step: Step) -> bool:
    if step.filter == "flip":
        return True
    return step.filter == "rotate" and float(step.params.get("degrees", 90.0)) % 90.0 == 0


def needs_only_luma(steps: Sequence[Step]) -> bool:
    """True when the pipeline turns the image grey before any step that computes on colour:
    it can then start from the grey level (a JPEG decodes its Y channel alone: no chroma, no
    colour conversion)."""
    for step in steps:
        if step.filter in GREY_RESULT:
            return True
        if not _moves_pixels_only(step):
            return False
    return False
