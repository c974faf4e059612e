"""Image formats: which are read and written, how they are recognised (magic bytes only; a
file name or a client's content type is never used), and the error every codec raises."""

from __future__ import annotations

import struct

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "FORMATS",
    "OUTPUT_FORMATS",
    "ImageError",
    "normalise_format",
    "output_format_for",
    "sniff_format",
    "writable_format",
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
_FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff"}
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


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


def normalise_format(fmt: str) -> str:
    name = fmt.strip().lower()
    return _FORMAT_ALIASES.get(name, name)


def writable_format(fmt: str) -> str:
    """``fmt`` normalised ("jpg" -> "jpeg"); ImageError(400, unsupported_output_format) unless
    it is one of OUTPUT_FORMATS."""
    name = normalise_format(fmt)
    if name not in OUTPUT_FORMATS:
        raise ImageError(
            f"cannot write {fmt!r} (choose one of {', '.join(OUTPUT_FORMATS)})",
            status=400,
            code="unsupported_output_format",
        )
    return name


def output_format_for(input_format: str, requested: str | None) -> str:
    """The requested output format if given, else the input's when writable, else png."""
    if requested:
        return writable_format(requested)
    name = normalise_format(input_format)
    return name if name in OUTPUT_FORMATS else "png"
