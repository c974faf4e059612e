"""Geometric filters: resize, rotate, flip. Each has a size function so a pipeline can refuse
an oversized intermediate image before allocating it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np


class ParamError(ValueError):
    """A parameter value that a filter cannot use (raised by cross-parameter checks)."""

    def __init__(self, message: str, *, param: str | None = None, allowed: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.allowed = allowed


# --- geometry ---------------------------------------------------------------------------


def check_resize(params: Mapping[str, Any]) -> None:
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


def resize_size(width: int, height: int, params: Mapping[str, Any]) -> tuple[int, int]:
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
    check_resize(params)
    h, w = image.shape[:2]
    new_w, new_h = resize_size(w, h, params)
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


def rotate_size(width: int, height: int, params: Mapping[str, Any]) -> tuple[int, int]:
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
