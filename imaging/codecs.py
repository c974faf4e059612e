"""Image bytes in and out: format sniffing, safe inspection, decoding and encoding.

Formats are recognised by their magic bytes only; a file name or a client's content type is
never used. Pixel counts are checked from the header before any pixel data is decoded, so a
small file that claims a huge size (a decompression bomb) costs nothing.

Decoded images follow OpenCV's convention: uint8 ``HxW`` (grey), ``HxWx3`` (BGR) or
``HxWx4`` (BGRA). 16-bit images are scaled to 8 bit (``>> 8``), palette images become BGR
(BGRA when the palette has transparency) and the EXIF orientation is applied.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "FORMATS",
    "OUTPUT_FORMATS",
    "ImageError",
    "ImageInfo",
    "decode_image",
    "encode_image",
    "inspect_image",
    "output_format_for",
    "sniff_format",
]

FORMATS = ("jpeg", "png", "webp", "bmp", "tiff")
OUTPUT_FORMATS = ("jpeg", "png", "webp")
EXTENSIONS: dict[str, str] = {
    "jpeg": ".jpg",
    "png": ".png",
    "webp": ".webp",
    "bmp": ".bmp",
    "tiff": ".tiff",
}
CONTENT_TYPES: dict[str, str] = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
}
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF"}
_FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff"}
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}

# Our own max_pixels check runs on the header before any decode, with a limit the caller
# chooses; Pillow's global check would warn (an error under pytest) or refuse on its own
# fixed limit instead, so it is switched off for this process.
Image.MAX_IMAGE_PIXELS = None
# A truncated file must fail loudly, never decode as a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Errors Pillow's decoders raise on malformed input.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
    NotImplementedError,
    Image.DecompressionBombError,
)


class ImageError(Exception):
    """An upload that cannot be used: ``status`` is the HTTP status, ``code`` a stable name.

    Codes: unsupported_media_type (415), corrupt_image (400), too_many_pixels (413),
    file_too_large (413), empty_file (400), unsupported_output_format (400),
    image_not_found (404).
    """

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def to_dict(self) -> dict:
        """JSON error body: ``{"error": code, "message": ...}``."""
        return {"error": self.code, "message": self.message}


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: format (one of FORMATS), displayed size, Pillow mode."""

    format: str
    width: int
    height: int
    mode: str


def sniff_format(data: bytes) -> str | None:
    """The format named by the magic bytes at the start of ``data``, or None."""
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:2] == b"BM" and len(head) >= 18:
        (dib_size,) = struct.unpack("<I", head[14:18])
        if dib_size in _BMP_HEADER_SIZES:
            return "bmp"
    return None


def _open(data: bytes, *, max_pixels: int) -> tuple[Image.Image, str]:
    """Open the header only (no pixel decode) and enforce the pixel cap."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(
            "not a supported image (accepted: JPEG, PNG, WebP, BMP, TIFF)",
            status=415,
            code="unsupported_media_type",
        )
    try:
        image = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])
    except _DECODE_ERRORS as exc:
        raise ImageError(f"corrupt {fmt} image: {exc}", status=400, code="corrupt_image") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError(f"corrupt {fmt} image: empty size", status=400, code="corrupt_image")
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}",
            status=413,
            code="too_many_pixels",
        )
    return image, fmt


def _load(image: Image.Image, fmt: str) -> None:
    try:
        image.load()
    except _DECODE_ERRORS as exc:
        raise ImageError(
            f"corrupt or truncated {fmt} image: {exc}", status=400, code="corrupt_image"
        ) from exc


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1) or 1)
    except _DECODE_ERRORS:
        return 1


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Check an upload and describe it; raises ImageError (400/413/415).

    Order: byte size, magic bytes, header (pixel cap), then a full decode to catch
    truncated or corrupt data. Width and height are as displayed (EXIF orientation applied).
    """
    if len(data) > max_bytes:
        raise ImageError(
            f"file is {len(data)} bytes, over the limit of {max_bytes}",
            status=413,
            code="file_too_large",
        )
    if len(data) == 0:
        raise ImageError("empty file", status=400, code="empty_file")
    image, fmt = _open(data, max_pixels=max_pixels)
    with image:
        mode = image.mode
        # Decode before reading EXIF: Pillow's getexif() may load the pixels itself, and an
        # error swallowed there would let a corrupt file pass.
        _load(image, fmt)
        width, height = image.size
        if _orientation(image) in (5, 6, 7, 8):
            width, height = height, width
    return ImageInfo(format=fmt, width=width, height=height, mode=mode)


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode to uint8 HxW / HxWx3 BGR / HxWx4 BGRA; raises ImageError (400/413/415)."""
    if len(data) == 0:
        raise ImageError("empty file", status=400, code="empty_file")
    image, fmt = _open(data, max_pixels=max_pixels)
    with image:
        _load(image, fmt)
        try:
            oriented = ImageOps.exif_transpose(image)
        except _DECODE_ERRORS:
            oriented = image
        return _to_array(oriented)


def _to_array(image: Image.Image) -> np.ndarray:
    """Pillow image (any mode) -> OpenCV-ordered uint8 array."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image)
        return (np.clip(values, 0, 65535).astype(np.uint32) >> 8).astype(np.uint8)
    if mode == "F":
        return np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
    if mode in ("1", "L"):
        return np.ascontiguousarray(np.asarray(image.convert("L")))
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"))
        return cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)
    rgb = np.asarray(image if mode == "RGB" else image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _normalise_format(fmt: str) -> str:
    name = fmt.strip().lower()
    return _FORMAT_ALIASES.get(name, name)


def encode_image(image: np.ndarray, fmt: str, *, quality: int = 90) -> bytes:
    """Encode an OpenCV-ordered uint8 image as jpeg, png or webp.

    JPEG drops the alpha channel; PNG is lossless; WebP uses ``quality`` (1-100) and is
    lossless at 100. Raises ImageError(400, unsupported_output_format) for other formats.
    """
    name = _normalise_format(fmt)
    if name not in OUTPUT_FORMATS:
        raise ImageError(
            f"cannot write {fmt!r} (choose one of {', '.join(OUTPUT_FORMATS)})",
            status=400,
            code="unsupported_output_format",
        )
    quality = max(1, min(100, int(quality)))
    if name == "jpeg":
        if image.ndim == 3 and image.shape[2] == 4:
            image = np.ascontiguousarray(image[:, :, :3])
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    elif name == "png":
        ok, buffer = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    else:
        # OpenCV's WebP encoder switches to lossless above 100.
        webp_quality = 101 if quality >= 100 else quality
        ok, buffer = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, webp_quality])
    if not ok:
        raise ImageError(f"could not encode {name}", status=400, code="unsupported_output_format")
    return buffer.tobytes()


def output_format_for(input_format: str, requested: str | None) -> str:
    """The requested output format if given, else the input's when writable, else png."""
    if requested:
        name = _normalise_format(requested)
        if name not in OUTPUT_FORMATS:
            raise ImageError(
                f"cannot write {requested!r} (choose one of {', '.join(OUTPUT_FORMATS)})",
                status=400,
                code="unsupported_output_format",
            )
        return name
    name = _normalise_format(input_format)
    return name if name in OUTPUT_FORMATS else "png"
