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

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

__all__ = ["FILTERS", "FilterSpec", "Param", "ParamError", "filter_schemas"]


class ParamError(ValueError):
    """A parameter value that a filter cannot use (raised by cross-parameter checks)."""

    def __init__(self, message: str, *, param: str | None = None, allowed: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.allowed = allowed


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


# --- channel-layout helpers -------------------------------------------------------------


def _split_alpha(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Colour part (HxW or HxWx3, contiguous) and the alpha plane, if any."""
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3]), image[:, :, 3]
    return image, None


def _join_alpha(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is None:
        return colour
    if colour.ndim == 2:
        colour = cv2.cvtColor(colour, cv2.COLOR_GRAY2BGR)
    return np.dstack((colour, alpha))


def _map_colour(image: np.ndarray, func: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``func`` to the colour channels only, keeping alpha as it was."""
    colour, alpha = _split_alpha(image)
    return _join_alpha(func(colour), alpha)


def _to_gray(image: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (OpenCV's conversion) of any supported layout."""
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


def _grey_result(gray: np.ndarray, image: np.ndarray) -> np.ndarray:
    """A grey result stays one channel; an input's alpha is kept (as BGRA)."""
    _, alpha = _split_alpha(image)
    return gray if alpha is None else _join_alpha(gray, alpha)


def _apply_lut(image: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Map every colour value through ``values`` (256 floats), rounded and clipped."""
    lut = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return _map_colour(image, lambda colour: cv2.LUT(colour, lut))


_LEVELS = np.arange(256, dtype=np.float64)


# --- colour and tone ----------------------------------------------------------------


def grayscale(image: np.ndarray) -> np.ndarray:
    """BT.601 grey level: one channel (BGRA when the input has alpha)."""
    gray = _to_gray(image)
    return _grey_result(gray.copy() if gray is image else gray, image)


def blur(image: np.ndarray, radius: float = 2.0) -> np.ndarray:
    """Gaussian blur with sigma = radius (reflected borders); radius 0 returns a copy."""
    if radius == 0:
        return image.copy()
    return _map_colour(
        image,
        lambda colour: cv2.GaussianBlur(
            colour, (0, 0), sigmaX=radius, sigmaY=radius, borderType=cv2.BORDER_REFLECT_101
        ),
    )


# The 3x3 Gaussian of sigma 1 (weights 0.274, 0.452, 0.274 per axis).
_GAUSS3 = cv2.getGaussianKernel(3, 1.0) @ cv2.getGaussianKernel(3, 1.0).T
_IDENTITY3 = np.zeros((3, 3))
_IDENTITY3[1, 1] = 1.0


def sharpen(image: np.ndarray, intensity: float = 1.0) -> np.ndarray:
    """Unsharp mask on a 3x3 Gaussian (sigma 1): ``img + k * (img - gauss3(img))``, as one 3x3
    convolution, uint8 in and out (rounded and saturated)."""
    if intensity == 0:
        return image.copy()
    kernel = ((1.0 + intensity) * _IDENTITY3 - intensity * _GAUSS3).astype(np.float32)
    return _map_colour(
        image,
        lambda colour: cv2.filter2D(colour, -1, kernel, borderType=cv2.BORDER_REFLECT_101),
    )


def edges(image: np.ndarray, threshold1: float = 100.0, threshold2: float = 200.0) -> np.ndarray:
    """Canny edge map (0 or 255) of the grey level: one channel (BGRA with alpha)."""
    return _grey_result(cv2.Canny(_to_gray(image), threshold1, threshold2), image)


def brightness(image: np.ndarray, factor: float = 1.2) -> np.ndarray:
    """Multiply every colour value by ``factor`` (PIL ``ImageEnhance.Brightness``)."""
    return _apply_lut(image, _LEVELS * factor)


def contrast(image: np.ndarray, factor: float = 1.2) -> np.ndarray:
    """Scale distances from the mean grey level by ``factor`` (PIL ``ImageEnhance.Contrast``)."""
    mean = int(float(np.mean(_to_gray(image))) + 0.5)
    return _apply_lut(image, mean + factor * (_LEVELS - mean))


def sepia(image: np.ndarray) -> np.ndarray:
    """Classic sepia matrix on RGB; grey input becomes BGR."""
    colour, alpha = _split_alpha(image)
    if colour.ndim == 2:
        colour = cv2.cvtColor(colour, cv2.COLOR_GRAY2BGR)
    # Rows and columns in B, G, R order: out_R = 0.393 R + 0.769 G + 0.189 B, and so on.
    matrix = np.array(
        [[0.131, 0.534, 0.272], [0.168, 0.686, 0.349], [0.189, 0.769, 0.393]], dtype=np.float32
    )
    return _join_alpha(cv2.transform(colour, matrix), alpha)


_THRESHOLD_MODES = {
    "binary": cv2.THRESH_BINARY,
    "binary_inv": cv2.THRESH_BINARY_INV,
    "otsu": cv2.THRESH_BINARY | cv2.THRESH_OTSU,
}


def threshold(image: np.ndarray, value: int = 128, mode: str = "binary") -> np.ndarray:
    """Grey level above ``value`` -> 255, else 0 (inverted for binary_inv; Otsu picks the value)."""
    _, out = cv2.threshold(_to_gray(image), value, 255, _THRESHOLD_MODES[mode])
    return _grey_result(out, image)


def invert(image: np.ndarray) -> np.ndarray:
    """Photographic negative of the colour channels."""
    return _apply_lut(image, 255 - _LEVELS)


# --- geometry ---------------------------------------------------------------------------


def _check_resize(params: Mapping[str, Any]) -> None:
    width, height, scale = params.get("width"), params.get("height"), params.get("scale")
    if scale is not None and (width is not None or height is not None):
        raise ParamError(
            "resize takes either scale or width/height, not both",
            param="scale",
            allowed=["scale", "width and/or height"],
        )
    if scale is None and width is None and height is None:
        raise ParamError(
            "resize needs scale, or width and/or height",
            param="width",
            allowed=["scale", "width and/or height"],
        )


def _resize_size(width: int, height: int, params: Mapping[str, Any]) -> tuple[int, int]:
    """Target (width, height): aspect ratio kept unless both width and height are given."""
    new_w, new_h, scale = params.get("width"), params.get("height"), params.get("scale")
    if scale is not None:
        return max(1, round(width * scale)), max(1, round(height * scale))
    if new_w is not None and new_h is not None:
        return int(new_w), int(new_h)
    if new_w is not None:
        return int(new_w), max(1, round(height * new_w / width))
    assert new_h is not None
    return max(1, round(width * new_h / height)), int(new_h)


def resize(
    image: np.ndarray,
    width: int | None = None,
    height: int | None = None,
    scale: float | None = None,
) -> np.ndarray:
    """Resize by scale or to width/height (INTER_AREA when shrinking, INTER_LINEAR otherwise)."""
    params = {"width": width, "height": height, "scale": scale}
    _check_resize(params)
    h, w = image.shape[:2]
    new_w, new_h = _resize_size(w, h, params)
    if (new_w, new_h) == (w, h):
        return image.copy()
    shrinking = new_w <= w and new_h <= h
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (new_w, new_h), interpolation=interpolation)


def _rotation_matrix(width: int, height: int, degrees: float, expand: bool):
    """PIL's ``Image.rotate`` geometry: output->input affine matrix (pixel-edge coordinates)
    and the output size."""
    angle = -math.radians(degrees)
    a, b = round(math.cos(angle), 15), round(math.sin(angle), 15)
    c, d = -b, a
    cx, cy = width / 2.0, height / 2.0
    tx = a * -cx + b * -cy + cx
    ty = c * -cx + d * -cy + cy
    out_w, out_h = width, height
    if expand:
        xs, ys = [], []
        for x, y in ((0, 0), (width, 0), (width, height), (0, height)):
            xs.append(a * x + b * y + tx)
            ys.append(c * x + d * y + ty)
        out_w = math.ceil(max(xs)) - math.floor(min(xs))
        out_h = math.ceil(max(ys)) - math.floor(min(ys))
        shift_x, shift_y = -(out_w - width) / 2.0, -(out_h - height) / 2.0
        tx, ty = a * shift_x + b * shift_y + tx, c * shift_x + d * shift_y + ty
    return np.array([[a, b, tx], [c, d, ty]]), max(1, out_w), max(1, out_h)


def _rotate_size(width: int, height: int, params: Mapping[str, Any]) -> tuple[int, int]:
    degrees = float(params.get("degrees", 90.0)) % 360.0
    expand = bool(params.get("expand", True))
    if degrees % 90.0 == 0:
        quarter_turns = int(degrees // 90)
        return (height, width) if expand and quarter_turns % 2 else (width, height)
    _, out_w, out_h = _rotation_matrix(width, height, degrees, expand)
    return out_w, out_h


def _centre_on_canvas(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop or pad (with zeros) ``image`` symmetrically to ``height x width``."""
    canvas = np.zeros((height, width, *image.shape[2:]), dtype=image.dtype)
    src_h, src_w = image.shape[:2]
    # Per axis: where the overlap starts in the source and in the canvas.
    sy, dy = max(0, (src_h - height) // 2), max(0, (height - src_h) // 2)
    sx, dx = max(0, (src_w - width) // 2), max(0, (width - src_w) // 2)
    rows, cols = min(src_h, height), min(src_w, width)
    canvas[dy : dy + rows, dx : dx + cols] = image[sy : sy + rows, sx : sx + cols]
    return canvas


def rotate(image: np.ndarray, degrees: float = 90.0, expand: bool = True) -> np.ndarray:
    """Rotate counter-clockwise about the centre like PIL ``Image.rotate`` (bilinear, black or
    transparent fill). Multiples of 90 degrees move pixels without resampling."""
    degrees = float(degrees) % 360.0
    height, width = image.shape[:2]
    if degrees % 90.0 == 0:
        quarter_turns = int(degrees // 90)
        turned = np.ascontiguousarray(np.rot90(image, quarter_turns))
        if expand or quarter_turns % 2 == 0 or width == height:
            return turned
        return _centre_on_canvas(turned, height, width)
    matrix, out_w, out_h = _rotation_matrix(width, height, degrees, expand)
    # PIL samples pixel centres (x + 0.5); OpenCV puts pixel centres on integers.
    linear = matrix[:, :2]
    offset = matrix[:, 2] + linear @ np.array([0.5, 0.5]) - 0.5
    inverse = np.hstack((linear, offset[:, None]))
    return cv2.warpAffine(
        image,
        inverse,
        (out_w, out_h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )


_FLIP_CODES = {"horizontal": 1, "vertical": 0, "both": -1}


def flip(image: np.ndarray, direction: str = "horizontal") -> np.ndarray:
    """Mirror left-right (horizontal), top-bottom (vertical) or both."""
    return cv2.flip(image, _FLIP_CODES[direction])


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
        validate=_check_resize,
        output_size=_resize_size,
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
        output_size=_rotate_size,
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
