"""Thumbnails: a small WebP preview of each output, made from the output frame already in
memory (no second decode), written beside the output under a key the storage derives."""

from __future__ import annotations

import cv2
import numpy as np

from imaging.encoders import encode_image

__all__ = ["THUMBNAIL_MAX_SIDE", "THUMBNAIL_QUALITY", "make_thumbnail"]

THUMBNAIL_MAX_SIDE = 256
THUMBNAIL_QUALITY = 75


def make_thumbnail(frame: np.ndarray, max_side: int = THUMBNAIL_MAX_SIDE) -> bytes:
    """WebP bytes of ``frame`` (an OpenCV-ordered uint8 image) scaled so its longest side is
    at most ``max_side`` (never enlarged), aspect ratio kept. Area interpolation: a clean
    reduction at a small fraction of the pipeline's cost."""
    height, width = frame.shape[:2]
    scale = max_side / max(width, height)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return encode_image(frame, "webp", quality=THUMBNAIL_QUALITY, effort="fast")
