"""The filter registry: pure functions over uint8 NumPy images in OpenCV channel order.

Images are ``HxW`` (grey), ``HxWx3`` (BGR) or ``HxWx4`` (BGRA). Every filter accepts all three
and returns a new uint8 array. Colour filters leave the alpha channel untouched; geometric
filters (resize, rotate, flip) transform it with the pixels. Filters that work on the grey
level (grayscale, edges, threshold) return one channel (``HxW``), which later steps keep and
the encoder writes as a grey (or bilevel) file; with an alpha channel they return BGRA, the
grey replicated into B, G and R. Only ``sepia`` needs colour: it turns grey input into BGR.

``FILTERS`` lists the filters in the order of the README's reference table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from imaging.colour import (
    blur,
    brightness,
    contrast,
    edges,
    grayscale,
    invert,
    sepia,
    sharpen,
    threshold,
)
from imaging.geometry import (
    ParamError,
    check_resize,
    flip,
    resize,
    resize_size,
    rotate,
    rotate_size,
)

__all__ = [
    "FILTERS",
    "FilterSpec",
    "Param",
    "ParamError",
    "blur",
    "brightness",
    "contrast",
    "edges",
    "filter_schemas",
    "flip",
    "grayscale",
    "invert",
    "resize",
    "rotate",
    "sepia",
    "sharpen",
    "threshold",
]


@dataclass(frozen=True)
class Param:
    """One declared filter parameter: its type, default and accepted values."""

    name: str
    type: str  # "int" | "float" | "bool" | "choice"
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    nullable: bool = False

    def to_schema(self) -> dict:
        """JSON description of the parameter (optional keys only when they apply)."""
        schema: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "description": self.description,
        }
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.choices is not None:
            schema["choices"] = list(self.choices)
        if self.nullable:
            schema["nullable"] = True
        return schema


@dataclass(frozen=True)
class FilterSpec:
    """A named filter: ``func(image, **params) -> image`` and its declared parameters.

    ``validate`` (optional) checks rules that span parameters and raises ``ParamError``;
    ``output_size`` (optional) predicts ``(width, height)`` of the result from the input's
    ``(width, height)`` so a pipeline can refuse to allocate an oversized image.
    """

    name: str
    description: str
    params: tuple[Param, ...]
    func: Callable[..., np.ndarray]
    validate: Callable[[Mapping[str, Any]], None] | None = None
    output_size: Callable[[int, int, Mapping[str, Any]], tuple[int, int]] | None = None

    def to_schema(self) -> dict:
        """JSON description of the filter: name, one-line description, parameter schemas."""
        return {
            "name": self.name,
            "description": self.description,
            "params": [param.to_schema() for param in self.params],
        }

    def defaults(self) -> dict[str, Any]:
        """Every declared parameter with its default value."""
        return {param.name: param.default for param in self.params}


# --- registry ---------------------------------------------------------------------------


def _factor(description: str) -> Param:
    return Param("factor", "float", 1.2, description, minimum=0.0, maximum=10.0)


_SPECS = (
    FilterSpec(
        "grayscale", "Grey level (ITU-R BT.601), one channel.", (), grayscale
    ),
    FilterSpec(
        "blur",
        "Gaussian blur with sigma = radius.",
        (
            Param(
                "radius",
                "float",
                2.0,
                "Gaussian sigma in pixels; 0 leaves the image as is.",
                minimum=0.0,
                maximum=50.0,
            ),
        ),
        blur,
    ),
    FilterSpec(
        "sharpen",
        "Unsharp mask: image + intensity * (image - gaussian3x3(image, sigma=1)).",
        (
            Param(
                "intensity",
                "float",
                1.0,
                "Strength of the sharpening; 0 leaves the image as is.",
                minimum=0.0,
                maximum=10.0,
            ),
        ),
        sharpen,
    ),
    FilterSpec(
        "edges",
        "Canny edge map of the grey level (white edges on black).",
        (
            Param(
                "threshold1",
                "float",
                100.0,
                "Lower hysteresis threshold.",
                minimum=0.0,
                maximum=1000.0,
            ),
            Param(
                "threshold2",
                "float",
                200.0,
                "Upper hysteresis threshold.",
                minimum=0.0,
                maximum=1000.0,
            ),
        ),
        edges,
    ),
    FilterSpec(
        "brightness",
        "Multiply colour values by a factor (1 = unchanged, 0 = black).",
        (_factor("Brightness factor."),),
        brightness,
    ),
    FilterSpec(
        "contrast",
        "Scale distances from the mean grey level (1 = unchanged, 0 = grey).",
        (_factor("Contrast factor."),),
        contrast,
    ),
    FilterSpec(
        "resize",
        "Resize by scale, or to width and/or height (aspect kept unless both are given).",
        (
            Param(
                "width",
                "int",
                None,
                "Target width in pixels.",
                minimum=1,
                maximum=20000,
                nullable=True,
            ),
            Param(
                "height",
                "int",
                None,
                "Target height in pixels.",
                minimum=1,
                maximum=20000,
                nullable=True,
            ),
            Param(
                "scale",
                "float",
                None,
                "Scale factor for both sides.",
                minimum=0.01,
                maximum=10.0,
                nullable=True,
            ),
        ),
        resize,
        validate=check_resize,
        output_size=resize_size,
    ),
    FilterSpec(
        "rotate",
        "Rotate counter-clockwise about the centre; multiples of 90 degrees are lossless.",
        (
            Param(
                "degrees", "float", 90.0, "Angle, counter-clockwise.", minimum=-360.0, maximum=360.0
            ),
            Param("expand", "bool", True, "Grow the canvas to fit the whole rotated image."),
        ),
        rotate,
        output_size=rotate_size,
    ),
    FilterSpec(
        "flip",
        "Mirror the image.",
        (
            Param(
                "direction",
                "choice",
                "horizontal",
                "Which way to mirror.",
                choices=("horizontal", "vertical", "both"),
            ),
        ),
        flip,
    ),
    FilterSpec("sepia", "Classic sepia tone matrix (grey input becomes colour).", (), sepia),
    FilterSpec(
        "threshold",
        "Black and white from the grey level: above value -> white.",
        (
            Param("value", "int", 128, "Threshold (ignored by otsu).", minimum=0, maximum=255),
            Param(
                "mode",
                "choice",
                "binary",
                "binary, binary_inv (inverted) or otsu (automatic).",
                choices=("binary", "binary_inv", "otsu"),
            ),
        ),
        threshold,
    ),
    FilterSpec("invert", "Photographic negative of the colour channels.", (), invert),
)

FILTERS: dict[str, FilterSpec] = {spec.name: spec for spec in _SPECS}


def filter_schemas() -> list[dict]:
    """Schemas of every filter, in registry order (for ``GET /api/filters/``)."""
    return [spec.to_schema() for spec in FILTERS.values()]
