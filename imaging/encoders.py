"""Encoding images: JPEG, PNG (grey and bilevel kept as such) and WebP, at a chosen effort."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from imaging.formats import ImageError, writable_format
from imaging.metadata import Metadata, embed

__all__ = ["EFFORTS", "encode_image", "is_bilevel"]

EFFORTS = ("fast", "balanced", "small")
# Encoder settings per effort, chosen by measurement (bench/README.md, "Encoders"): PNG at
# zlib level 1 with the RLE strategy is both faster and smaller than level 3 on photographs;
# level 9 wins on flat graphics. WebP's method 2 is about twice as fast as 4 at the same size.
_PNG_SETTINGS = {
    "fast": (1, cv2.IMWRITE_PNG_STRATEGY_RLE),
    "balanced": (1, cv2.IMWRITE_PNG_STRATEGY_RLE),
    "small": (9, cv2.IMWRITE_PNG_STRATEGY_DEFAULT),
}
_WEBP_METHOD = {"fast": 0, "balanced": 2, "small": 6}


def is_bilevel(image: np.ndarray) -> bool:
    """True for a one-channel image of 0s and 255s only (edges, threshold)."""
    return image.ndim == 2 and cv2.countNonZero(cv2.inRange(image, 1, 254)) == 0


def encode_image(
    image: np.ndarray, fmt: str, *, quality: int = 90, effort: str = "balanced",
    metadata: Metadata | None = None,
) -> bytes:
    """Encode an OpenCV-ordered uint8 image as jpeg, png or webp.

    One-channel images are written as grey (PNG: 1 bit per pixel when bilevel, e.g. an edge
    map). JPEG drops the alpha channel; PNG is lossless; WebP uses ``quality`` (1-100) and is
    lossless at 100. ``effort`` trades encoding time for size (fast, balanced, small).
    ``metadata``: the ICC profile and EXIF to write (a colour profile is never written into
    a grey image).
    Raises ImageError(400, unsupported_output_format) for other formats.
    """
    name = writable_format(fmt)
    if effort not in EFFORTS:
        raise ImageError(f"unknown effort {effort!r} (choose one of {', '.join(EFFORTS)})",
                         status=400, code="invalid_effort")
    quality = max(1, min(100, int(quality)))
    metadata = metadata or Metadata()
    if image.ndim == 2 and metadata.icc_profile is not None:
        metadata = Metadata(None, metadata.exif)
    if name == "jpeg":
        if image.ndim == 3 and image.shape[2] == 4:
            image = np.ascontiguousarray(image[:, :, :3])
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        if effort == "small":
            params += [cv2.IMWRITE_JPEG_OPTIMIZE, 1]
        ok, buffer = cv2.imencode(".jpg", image, params)
    elif name == "png":
        if is_bilevel(image):
            ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_BILEVEL, 1])
        else:
            level, strategy = _PNG_SETTINGS[effort]
            ok, buffer = cv2.imencode(".png", image, [
                cv2.IMWRITE_PNG_COMPRESSION, level, cv2.IMWRITE_PNG_STRATEGY, strategy])
    else:
        return _encode_webp(image, quality, _WEBP_METHOD[effort], metadata)
    if not ok:
        raise ImageError(f"could not encode {name}", status=400, code="unsupported_output_format")
    return embed(buffer.tobytes(), name, metadata)


def _encode_webp(image: np.ndarray, quality: int, method: int, metadata: Metadata) -> bytes:
    """WebP through Pillow, which exposes libwebp's speed/size ``method`` (OpenCV does not)."""
    if image.ndim == 2:
        pil = Image.fromarray(image, "L")
    elif image.shape[2] == 4:
        pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA), "RGBA")
    else:
        pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "RGB")
    options: dict[str, object] = {"method": method}
    if metadata.icc_profile is not None:
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif is not None:
        options["exif"] = b"Exif\x00\x00" + metadata.exif
    if quality >= 100:
        options.update(lossless=True, quality=100)
    else:
        options["quality"] = quality
    buffer = io.BytesIO()
    pil.save(buffer, "WEBP", **options)
    return buffer.getvalue()
