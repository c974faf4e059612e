"""Colour and tone filters: pure functions over uint8 images in OpenCV channel order.

See ``imaging.filters`` for the layouts every filter accepts and returns.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

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
    """Apply a per-channel ``func`` to the colour channels, keeping alpha as it was. On BGRA
    it runs over all four channels and the alpha is put back: one new frame, where splitting
    off the colour and stacking it again would hold three."""
    if image.ndim == 3 and image.shape[2] == 4:
        out = func(image)
        out[:, :, 3] = image[:, :, 3]
        return out
    return func(image)


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
