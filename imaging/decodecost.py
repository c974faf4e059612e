"""Decode cost read from the file's structure, before any pixel is decoded.

A file's pixel count does not bound what decoding it costs everywhere:
- a progressive JPEG is decoded once per scan, so a small file with thousands of refinement
  scans costs minutes of CPU (``jpeg_scan_count``);
- an animation or a multi-page file holds several frames (``frame_count``), each as large as
  the header's size; frames count as pixels.

Both are found by walking the container's markers or chunks with ``bytes.find`` and ``struct``:
linear in the file size, never decoding. The same walks tell a file cut short from a whole one
(``check_complete``) and find a PNG's EXIF wherever it sits (``png_exif``), so an upload is
checked from its structure alone: decoding happens only in a task's bounded process.
"""

from __future__ import annotations

import re
import struct

__all__ = ["StructureError", "check_complete", "frame_count", "jpeg_scan_count", "png_exif"]

# Inside entropy-coded data 0xFF is followed by 0x00 (stuffing) or a restart marker (D0-D7);
# any other byte after 0xFF starts the next marker. Fill bytes (0xFF 0xFF) are skipped.
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RSTn: no length field
_SOS, _EOI = 0xDA, 0xD9
_MAX_TIFF_PAGES = 10_000
# Encoders write image data in chunks of 8 KiB or more: a file of more chunks than this is
# built to make the walk slow.
_MAX_PNG_CHUNKS = 200_000


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


def _png_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload length) of every chunk up to IEND; StructureError if a
    chunk runs past the end of the file, there is no IEND, or there are too many chunks."""
    chunks, pos, size = [], 8, len(data)
    while True:
        if pos + 8 > size:
            raise StructureError("truncated: the file ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, pos)
        if pos + 12 + length > size:
            raise StructureError(f"truncated: a {kind.decode('latin-1')!r} chunk of {length} "
                                 f"bytes runs past the end of the file ({size} bytes)")
        chunks.append((kind, pos + 8, length))
        if kind == b"IEND":
            return chunks
        if len(chunks) > _MAX_PNG_CHUNKS:
            raise StructureError(f"more than {_MAX_PNG_CHUNKS} chunks")
        pos += 12 + length


def png_exif(data: bytes) -> bytes | None:
    """The payload of a PNG's eXIf chunk, before or after the image data, or None. (Pillow
    finds one after the image data only by decoding the whole image.)"""
    for kind, start, length in _png_chunks(data):
        if kind == b"eXIf":
            return data[start : start + length]
    return None


def check_complete(data: bytes, fmt: str, *, bmp_data_size: int | None = None,
                   tiff_extents: list[tuple[int, int]] | None = None) -> None:
    """StructureError if the file's structure says it was cut short: a JPEG without its end
    marker, a PNG chunk past the end or no IEND, a RIFF (WebP) shorter than its size field,
    BMP pixel data or TIFF strips (``(offset, length)`` of the first page) past the end."""
    size = len(data)
    if fmt == "jpeg" and not data.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9"):
        raise StructureError("truncated: no end marker")
    if fmt == "png":
        _png_chunks(data)
    if fmt == "webp":
        (riff_size,) = struct.unpack_from("<I", data, 4)
        if riff_size + 8 > size:
            raise StructureError(f"truncated: the RIFF header says {riff_size + 8} bytes, the "
                                 f"file has {size}")
    if fmt == "bmp" and bmp_data_size is not None and bmp_data_size > size:
        raise StructureError(f"truncated: the pixel data ends at byte {bmp_data_size}, the "
                             f"file has {size}")
    for offset, length in tiff_extents or ():
        if offset + length > size:
            raise StructureError(f"truncated: image data at bytes {offset}..{offset + length}, "
                                 f"the file has {size}")
