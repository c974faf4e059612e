"""Tests of imaging/: filters, pipelines, codecs, storage, samples, processing (no Django).

Small image factories shared by these tests live here.
"""

from __future__ import annotations

import numpy as np


def photo(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A BGR test image with smooth gradients, a bright disc and mild noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:height, :width].astype(np.float32)
    b = 40 + 150 * xs / max(1, width - 1)
    g = 30 + 180 * ys / max(1, height - 1)
    r = 128 + 90 * np.sin(xs / 7.0) * np.cos(ys / 5.0)
    image = np.stack((b, g, r), axis=-1)
    disc = (xs - width * 0.6) ** 2 + (ys - height * 0.4) ** 2 < (min(height, width) * 0.2) ** 2
    image[disc] = (230, 240, 250)
    image += rng.normal(0, 6, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def with_alpha(image: np.ndarray, seed: int = 1) -> np.ndarray:
    """``image`` (BGR) plus a random alpha channel."""
    rng = np.random.default_rng(seed)
    alpha = rng.integers(0, 256, image.shape[:2], dtype=np.uint8)
    return np.dstack((image, alpha))


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """BGR(A) -> RGB(A), contiguous (for Pillow)."""
    if image.ndim == 2:
        return image
    order = [2, 1, 0, 3][: image.shape[2]]
    return np.ascontiguousarray(image[:, :, order])


rgb_to_bgr = bgr_to_rgb  # the same channel swap
