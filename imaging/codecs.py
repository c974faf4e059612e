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
from PIL import Image, ImageFile

from imaging.decodecost import StructureError, frame_count, jpeg_scan_count

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
    "decode_image",
    "encode_image",
    "inspect_image",
    "is_bilevel",
    "output_format_for",
    "read_header",
    "shrink_factor",
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
# Progressive JPEGs from cameras and encoders have about 10 scans; each costs a decode pass.
DEFAULT_MAX_JPEG_SCANS = 100
# JPEG modes OpenCV decodes exactly like Pillow; CMYK/YCCK and others go through Pillow.
_FAST_JPEG_MODES = ("RGB", "L")
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


class ImageError(Exception):
    """An upload that cannot be used: ``status`` is the HTTP status, ``code`` a stable name.

    Codes: unsupported_media_type (415), corrupt_image (400), too_many_pixels (413),
    too_many_scans (400), file_too_large (413), empty_file (400),
    unsupported_output_format (400), image_not_found (404).
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
            frames = frame_count(data, fmt)
            scans = jpeg_scan_count(data, stop_after=max_jpeg_scans) if fmt == "jpeg" else 1
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
        # Last: reading EXIF may make Pillow load pixel data, so only within the budget.
        orientation = _orientation(image)
    return Header(fmt, width, height, mode, orientation, frames, scans)


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
    """Check an upload and describe it; raises ImageError (400/413/415).

    Order: byte size, magic bytes, header (pixel cap, scan cap), then a full decode to catch
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
    header = read_header(data, max_pixels=max_pixels, max_jpeg_scans=max_jpeg_scans)
    _decode(data, header)
    width, height = header.size
    return ImageInfo(format=header.format, width=width, height=height, mode=header.mode)


def decode_image(
    data: bytes, *, max_pixels: int, max_jpeg_scans: int = DEFAULT_MAX_JPEG_SCANS,
    reduce_to: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode to uint8 HxW / HxWx3 BGR / HxWx4 BGRA, EXIF orientation applied; raises
    ImageError (400/413/415).

    ``reduce_to`` (width, height as displayed): the caller will shrink the image to at most
    this size, so a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (DCT scaling: the decoder
    skips the work) as long as the result stays at least that large on both axes.
    """
    if len(data) == 0:
        raise ImageError("empty file", status=400, code="empty_file")
    header = read_header(data, max_pixels=max_pixels, max_jpeg_scans=max_jpeg_scans)
    return _decode(data, header, reduce_to=reduce_to)


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


def _decode(data: bytes, header: Header, *, reduce_to: tuple[int, int] | None = None
            ) -> np.ndarray:
    if header.format == "jpeg" and header.mode in _FAST_JPEG_MODES:
        return _apply_orientation(_decode_jpeg(data, header, reduce_to), header.orientation)
    image, fmt = _open(data)
    with image:
        try:
            image.load()
        except _DECODE_ERRORS as exc:
            raise ImageError(
                f"corrupt or truncated {fmt} image: {exc}", status=400, code="corrupt_image"
            ) from exc
        return _apply_orientation(_to_array(image), header.orientation)


def _decode_jpeg(data: bytes, header: Header, reduce_to: tuple[int, int] | None) -> np.ndarray:
    """libjpeg-turbo through OpenCV: about 1.7x Pillow's decode (bench/README.md)."""
    if not _has_eoi(data):
        # libjpeg fills a truncated scan with grey and only warns: refuse it instead.
        raise ImageError("corrupt or truncated jpeg image: no end marker", status=400,
                         code="corrupt_image")
    grey = header.mode == "L"
    flags = _JPEG_FLAGS[(grey, shrink_factor(header, reduce_to))] | cv2.IMREAD_IGNORE_ORIENTATION
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if decoded is None:
        raise ImageError("corrupt jpeg image: the decoder refused it", status=400,
                         code="corrupt_image")
    return decoded


def _has_eoi(data: bytes) -> bool:
    return data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")


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


def _normalise_format(fmt: str) -> str:
    name = fmt.strip().lower()
    return _FORMAT_ALIASES.get(name, name)


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
    image: np.ndarray, fmt: str, *, quality: int = 90, effort: str = "balanced"
) -> bytes:
    """Encode an OpenCV-ordered uint8 image as jpeg, png or webp.

    One-channel images are written as grey (PNG: 1 bit per pixel when bilevel, e.g. an edge
    map). JPEG drops the alpha channel; PNG is lossless; WebP uses ``quality`` (1-100) and is
    lossless at 100. ``effort`` trades encoding time for size (fast, balanced, small).
    Raises ImageError(400, unsupported_output_format) for other formats.
    """
    name = _normalise_format(fmt)
    if name not in OUTPUT_FORMATS:
        raise ImageError(
            f"cannot write {fmt!r} (choose one of {', '.join(OUTPUT_FORMATS)})",
            status=400,
            code="unsupported_output_format",
        )
    if effort not in EFFORTS:
        raise ImageError(f"unknown effort {effort!r} (choose one of {', '.join(EFFORTS)})",
                         status=400, code="invalid_effort")
    quality = max(1, min(100, int(quality)))
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
        return _encode_webp(image, quality, _WEBP_METHOD[effort])
    if not ok:
        raise ImageError(f"could not encode {name}", status=400, code="unsupported_output_format")
    return buffer.tobytes()


def _encode_webp(image: np.ndarray, quality: int, method: int) -> bytes:
    """WebP through Pillow, which exposes libwebp's speed/size ``method`` (OpenCV does not)."""
    if image.ndim == 2:
        pil = Image.fromarray(image, "L")
    elif image.shape[2] == 4:
        pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA), "RGBA")
    else:
        pil = Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "RGB")
    buffer = io.BytesIO()
    if quality >= 100:
        pil.save(buffer, "WEBP", lossless=True, quality=100, method=method)
    else:
        pil.save(buffer, "WEBP", quality=quality, method=method)
    return buffer.getvalue()


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
