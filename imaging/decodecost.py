"""Decode cost read from the file's structure, before any pixel is decoded.

A file's pixel count does not bound what decoding it costs everywhere:
- a progressive JPEG is decoded once per scan, so a small file with thousands of refinement
  scans costs minutes of CPU (``jpeg_scan_count``);
- an animation or a multi-page file holds several frames (``frame_count``), each as large as
  the header's size; frames count as pixels.

Both are found by walking the container's markers or chunks with ``bytes.find`` and ``struct``:
linear in the file size, never decoding.
"""

from __future__ import annotations

import re
import struct

__all__ = ["StructureError", "frame_count", "jpeg_scan_count"]

# Inside entropy-coded data 0xFF is followed by 0x00 (stuffing) or a restart marker (D0-D7);
# any other byte after 0xFF starts the next marker. Fill bytes (0xFF 0xFF) are skipped.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: no length field
_SOS, _EOI = 0xDA, 0xD9
_MAX_TIFF_PAGES = 10_000


class StructureError(ValueError):
    """The container's structure is broken (a decoder would reject the file too)."""


def jpeg_scan_count(data: bytes, *, stop_after: int | None = None) -> int:
    """Number of scans (SOS segments) in a JPEG. With ``stop_after``, counting stops once the
    count exceeds it (enough to refuse the file)."""
    if not data.startswith(b"\xff\xd8"):
        raise StructureError("not a JPEG: no SOI marker")
    pos, scans, size = 2, 0, len(data)
    while pos < size:
        if data[pos] != 0xFF:
            raise StructureError(f"expected a marker at byte {pos}")
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            break
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            continue
        if pos + 2 > size:
            raise StructureError("truncated marker segment")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise StructureError(f"marker segment of length {length}")
        pos += length
        if marker == _SOS:
            scans += 1
            if stop_after is not None and scans > stop_after:
                return scans
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                break  # entropy data runs to the end (truncated file: the decoder says so)
            pos = found.start()
    return scans


def frame_count(data: bytes, fmt: str) -> int:
    """Frames (or pages) the file declares: APNG's acTL, WebP's ANMF chunks, TIFF's IFD chain.
    1 for everything else."""
    if fmt == "png":
        return _png_frames(data)
    if fmt == "webp":
        return _webp_frames(data)
    if fmt == "tiff":
        return _tiff_pages(data)
    return 1


def _png_frames(data: bytes) -> int:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        if kind == b"acTL" and length >= 8 and pos + 16 <= len(data):
            (frames,) = struct.unpack_from(">I", data, pos + 8)
            return max(1, frames)
        if kind in (b"IDAT", b"IEND"):  # acTL must come before the image data
            return 1
        pos += 12 + length
    return 1


def _webp_frames(data: bytes) -> int:
    frames, pos = 0, 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack_from("<4sI", data, pos)
        if kind == b"ANMF":
            frames += 1
        pos += 8 + length + (length & 1)
    return max(1, frames)


def _tiff_pages(data: bytes) -> int:
    if len(data) < 8:
        raise StructureError("truncated TIFF header")
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", data, 4)
    pages, seen = 0, set()
    while offset and offset not in seen and pages < _MAX_TIFF_PAGES:
        if offset + 2 > len(data):
            break
        seen.add(offset)
        pages += 1
        (entries,) = struct.unpack_from(order + "H", data, offset)
        next_at = offset + 2 + 12 * entries
        if next_at + 4 > len(data):
            break
        (offset,) = struct.unpack_from(order + "I", data, next_at)
    return max(1, pages)
