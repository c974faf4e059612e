"""Reading images: safe inspection and decoding, the decode budget checked from the header.

Formats are recognised by their magic bytes only (``imaging.formats``). Pixel counts (all
frames) and JPEG scans are checked from the file's structure before any pixel data is
decoded, so a small file that claims a huge size or holds thousands of scans costs nothing.
Inspecting an upload (:func:`inspect_image`, what the API does) reads headers and structure
only and never decodes: damaged pixel data is found by the decode, in a task's bounded
process.
Encoding lives in ``imaging.encoders``; both are re-exported here.

Decoded images follow OpenCV's convention: uint8 ``HxW`` (grey), ``HxWx3`` (BGR) or
``HxWx4`` (BGRA). 16-bit images are scaled to 8 bit (``>> 8``), palette images become BGR
(BGRA when the palette has transparency) and the EXIF orientation is applied.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageFile

from imaging.decodecost import (
    StructureError,
    check_complete,
    frame_count,
    jpeg_scan_count,
    png_exif,
)
from imaging.encoders import EFFORTS, encode_image, is_bilevel
from imaging.formats import (
    CONTENT_TYPES,
    EXTENSIONS,
    FORMATS,
    OUTPUT_FORMATS,
    ImageError,
    output_format_for,
    sniff_format,
)
from imaging.metadata import Metadata, read_metadata

__all__ = [
    "CONTENT_TYPES",
    "DEFAULT_MAX_JPEG_SCANS",
    "EFFORTS",
    "EXTENSIONS",
    "FORMATS",
    "OUTPUT_FORMATS",
    "Header",
    "ImageError",
    "ImageInfo",
    "decode",
    "decode_image",
    "encode_image",
    "inspect_image",
    "is_bilevel",
    "output_format_for",
    "read_header",
    "shrink_factor",
    "sniff_format",
]

_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP", "tiff": "TIFF"}
# Progressive JPEGs from cameras and encoders have about 10 scans; each costs a decode pass.
DEFAULT_MAX_JPEG_SCANS = 100
# JPEG modes OpenCV decodes exactly like Pillow; CMYK/YCCK and others go through Pillow.
_FAST_JPEG_MODES = ("RGB", "L")
# PNG modes OpenCV decodes to the same pixels (palette, grey+alpha, 16-bit grey: Pillow).
_FAST_PNG_MODES = ("RGB", "RGBA", "L")
_JPEG_FLAGS = {
    (False, 1): cv2.IMREAD_COLOR, (False, 2): cv2.IMREAD_REDUCED_COLOR_2,
    (False, 4): cv2.IMREAD_REDUCED_COLOR_4, (False, 8): cv2.IMREAD_REDUCED_COLOR_8,
    (True, 1): cv2.IMREAD_GRAYSCALE, (True, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (True, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4, (True, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}

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


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: format (one of FORMATS), displayed size, Pillow mode."""

    format: str
    width: int
    height: int
    mode: str


@dataclass(frozen=True)
class Header:
    """What a file says about itself before any pixel is decoded."""

    format: str
    width: int  # as stored (before the EXIF orientation)
    height: int
    mode: str
    orientation: int  # EXIF orientation, 1..8
    frames: int
    scans: int  # JPEG scans (1 for other formats)
    metadata: Metadata = field(default_factory=Metadata)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as displayed, the EXIF orientation applied."""
        swapped = self.orientation in (5, 6, 7, 8)
        return (self.height, self.width) if swapped else (self.width, self.height)


def read_header(
    data: bytes, *, max_pixels: int, max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS
) -> Header:
    """Sniff, open the header only and check the decode budget: pixels (all frames) and
    JPEG scans. Raises ImageError (400 corrupt_image / too_many_scans, 413 too_many_pixels,
    415 unsupported_media_type); decodes nothing."""
    image, fmt = _open(data)
    with image:
        width, height = image.size
        mode = image.mode
        if width <= 0 or height <= 0:
            raise ImageError(f"corrupt {fmt} image: empty size", status=400, code="corrupt_image")
        try:
            check_complete(data, fmt, **_extents(image, fmt))
            frames = frame_count(data, fmt)
            scans = jpeg_scan_count(data, stop_after=max_jpeg_scans) if fmt == "jpeg" else 1
            if fmt == "png" and "exif" not in image.info:
                # Pillow would decode the whole image to look for EXIF after the pixel data.
                exif = png_exif(data)
                image.info["exif"] = b"Exif\x00\x00" + exif if exif else b""
        except StructureError as exc:
            raise ImageError(
                f"corrupt {fmt} image: {exc}", status=400, code="corrupt_image"
            ) from exc
        if width * height * frames > max_pixels:
            what = f"{frames} frames of {width}x{height}" if frames > 1 else f"{width}x{height}"
            raise ImageError(
                f"image is {what} = {width * height * frames} pixels, over the limit of "
                f"{max_pixels}",
                status=413,
                code="too_many_pixels",
            )
        if scans > max_jpeg_scans:
            raise ImageError(
                f"progressive JPEG with more than {max_jpeg_scans} scans: decoding it costs one "
                "pass per scan",
                status=400,
                code="too_many_scans",
            )
        # Last, and within the budget: reading EXIF must not make Pillow load pixel data.
        orientation = _orientation(image)
        metadata = read_metadata(image)
    return Header(fmt, width, height, mode, orientation, frames, scans, metadata)


def _extents(image: Image.Image, fmt: str) -> dict[str, Any]:
    """Where the first frame's data must end, for ``check_complete``: BMP's uncompressed rows,
    TIFF's strips or tiles."""
    if fmt == "bmp":
        tiles = getattr(image, "tile", None)
        tile = tiles[0] if tiles else None
        if tile is not None and tile.codec_name == "raw":
            stride = int(tile.args[1]) if len(tile.args) > 1 else 0
            return {"bmp_data_size": tile.offset + stride * image.size[1]}
    if fmt == "tiff":
        tags = getattr(image, "tag_v2", {})
        offsets = tags.get(273) or tags.get(324) or ()
        counts = tags.get(279) or tags.get(325) or ()
        if len(offsets) == len(counts):
            return {"tiff_extents": [(int(o), int(n)) for o, n in zip(offsets, counts,
                                                                       strict=True)]}
    return {}


def _open(data: bytes) -> tuple[Image.Image, str]:
    """Open the header only (no pixel decode)."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(
            "not a supported image (accepted: JPEG, PNG, WebP, BMP, TIFF)",
            status=415,
            code="unsupported_media_type",
        )
    try:
        return Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]]), fmt
    except _DECODE_ERRORS as exc:
        raise ImageError(f"corrupt {fmt} image: {exc}", status=400, code="corrupt_image") from exc


def _orientation(image: Image.Image) -> int:
    try:
        value = int(image.getexif().get(0x0112, 1) or 1)
    except _DECODE_ERRORS:
        return 1
    return value if 1 <= value <= 8 else 1


def inspect_image(
    data: bytes, *, max_bytes: int, max_pixels: int,
    max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS,
) -> ImageInfo:
    """Check an upload from its headers and structure and describe it; raises ImageError
    (400/413/415). Decodes nothing.

    Order: byte size, magic bytes, header (pixel cap, scan cap), structure (a file cut short
    is corrupt_image). Width and height are as displayed (EXIF orientation applied).
    """
    if len(data) > max_bytes:
        raise ImageError(
            f"file is {len(data)} bytes, over the limit of {max_bytes}",
            status=413,
            code="file_too_large",
        )
    if len(data) == 0:
        raise ImageError("empty file", status=400, code="empty_file")
    header = read_header(data, max_pixels=max_pixels, max_jpeg_scans=max_jpeg_scans)
    width, height = header.size
    return ImageInfo(format=header.format, width=width, height=height, mode=header.mode)


def decode_image(
    data: bytes, *, max_pixels: int, max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS,
    reduce_to: tuple[int, int] | None = None, luma: bool = False,
) -> np.ndarray:
    """Decode to uint8 HxW / HxWx3 BGR / HxWx4 BGRA, EXIF orientation applied; raises
    ImageError (400/413/415).

    ``reduce_to`` (width, height as displayed): the caller will shrink the image to at most
    this size, so a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling: the decoder
    skips the work) as long as the result stays at least that large on both axes.
    ``luma``: the caller only needs the grey level of an image without alpha; a JPEG then
    decodes its Y channel alone (no chroma, no colour conversion).
    """
    if len(data) == 0:
        raise ImageError("empty file", status=400, code="empty_file")
    header = read_header(data, max_pixels=max_pixels, max_jpeg_scans=max_jpeg_scans)
    return decode(data, header, reduce_to=reduce_to, luma=luma)


def decode(data: bytes, header: Header, *, reduce_to: tuple[int, int] | None = None,
           luma: bool = False) -> np.ndarray:
    """Decode ``data`` whose header was read (and its budget checked) by :func:`read_header`."""
    image = _decode(data, header, reduce_to=reduce_to, luma=luma)
    if luma and image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return image


def shrink_factor(header: Header, reduce_to: tuple[int, int] | None) -> int:
    """The largest JPEG DCT scale divisor (1, 2, 4, 8) that keeps the decoded image at least
    ``reduce_to`` (displayed width, height) on both axes."""
    if reduce_to is None or header.format != "jpeg" or header.mode not in _FAST_JPEG_MODES:
        return 1
    width, height = header.size
    target_w, target_h = reduce_to
    for factor in (8, 4, 2):
        # libjpeg rounds a scaled dimension up.
        if -(-width // factor) >= target_w and -(-height // factor) >= target_h:
            return factor
    return 1


def _decode(data: bytes, header: Header, *, reduce_to: tuple[int, int] | None = None,
            luma: bool = False) -> np.ndarray:
    if header.format == "jpeg" and header.mode in _FAST_JPEG_MODES:
        return _apply_orientation(_decode_jpeg(data, header, reduce_to, luma),
                                  header.orientation)
    if header.format == "png" and header.mode in _FAST_PNG_MODES and header.frames == 1:
        return _apply_orientation(_decode_png(data), header.orientation)
    image, fmt = _open(data)
    with image:
        try:
            image.load()
        except _DECODE_ERRORS as exc:
            raise ImageError(
                f"corrupt or truncated {fmt} image: {exc}", status=400, code="corrupt_image"
            ) from exc
        return _apply_orientation(_to_array(image), header.orientation)


def _decode_jpeg(data: bytes, header: Header, reduce_to: tuple[int, int] | None,
                 luma: bool = False) -> np.ndarray:
    """libjpeg-turbo through OpenCV: about 1.7x Pillow's decode (bench/README.md)."""
    # No end marker (libjpeg would fill a truncated scan with grey and only warn) was refused
    # by read_header.
    grey = header.mode == "L" or luma
    flags = _JPEG_FLAGS[(grey, shrink_factor(header, reduce_to))] | cv2.IMREAD_IGNORE_ORIENTATION
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if decoded is None:
        raise ImageError("corrupt jpeg image: the decoder refused it", status=400,
                         code="corrupt_image")
    return decoded


def _decode_png(data: bytes) -> np.ndarray:
    """libpng through OpenCV, straight into BGR(A) or grey: one frame in memory, where
    Pillow's path holds three or four copies of it on the way to a NumPy array."""
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8),
                           cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if decoded is None:
        raise ImageError("corrupt or truncated png image: the decoder refused it", status=400,
                         code="corrupt_image")
    if decoded.dtype == np.uint16:  # 48/64-bit colour: Pillow's mode says RGB(A) too
        decoded = np.right_shift(decoded, 8).astype(np.uint8)
    return decoded


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Pillow's ``ImageOps.exif_transpose`` on an array: pixels move, none is resampled."""
    if orientation == 2:
        return cv2.flip(image, 1)
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)
    if orientation == 5:
        return cv2.transpose(image)
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.flip(cv2.transpose(image), -1)
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


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
