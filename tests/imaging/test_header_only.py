"""Inspecting an upload reads its headers and structure only: for every format, checking a
large image costs no more memory than a small fraction of its decoded size, and its answer
(format, size, frames, scans, orientation) comes from the file itself."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imaging.codecs import inspect_image, read_header

SIDE = 6000  # decoded: 36 Mpx, 34 MiB as grey, 103 MiB as BGR


def _kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def encoded(fmt: str) -> bytes:
    """A SIDE x SIDE image in ``fmt``, small on disk (flat or bilevel pixels)."""
    buffer = io.BytesIO()
    if fmt == "BMP":  # 1 bit per pixel: 4.3 MiB, decoded to 34+ MiB
        Image.new("1", (SIDE, SIDE), 1).save(buffer, "BMP")
    else:
        image = Image.fromarray(np.full((SIDE, SIDE, 3), 120, np.uint8))
        options = {"TIFF": {"compression": "tiff_deflate"}, "WEBP": {"lossless": True},
                   "JPEG": {"quality": 50}}.get(fmt, {})
        exif = Image.Exif()
        exif[0x0112] = 6  # rotated: the displayed size is swapped
        image.save(buffer, fmt, exif=exif.tobytes(), **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP"])
def test_inspecting_a_large_image_decodes_none_of_it(fmt: str) -> None:
    data = encoded(fmt)
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts from here
    before = _kib("VmRSS")

    info = inspect_image(data, max_bytes=len(data), max_pixels=SIDE * SIDE)

    grown_mib = (_kib("VmHWM") - before) / 1024
    assert (info.width, info.height) == (SIDE, SIDE)
    assert grown_mib < 8, f"{fmt}: +{grown_mib:.1f} MiB while inspecting"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_the_orientation_comes_from_the_header(fmt: str) -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 20), (10, 20, 30)).save(buffer, fmt, exif=exif.tobytes())

    header = read_header(buffer.getvalue(), max_pixels=10**6)

    assert header.orientation == 6
    assert header.size == (20, 40)  # as displayed
    assert header.metadata.exif is not None


def test_a_png_whose_exif_follows_the_image_data_is_read_without_decoding() -> None:
    # Pillow finds an eXIf chunk after IDAT only by decoding the whole image; the chunk walk
    # finds it in the bytes.
    data = encoded("PNG")
    start = data.index(b"eXIf") - 4
    (length,) = struct.unpack(">I", data[start:start + 4])
    chunk = data[start:start + 12 + length]
    without = data[:start] + data[start + 12 + length:]
    iend = without.rindex(b"IEND") - 4
    moved = without[:iend] + chunk + without[iend:]
    assert moved.index(b"eXIf") > moved.index(b"IDAT")
    Path("/proc/self/clear_refs").write_text("5")
    before = _kib("VmRSS")

    header = read_header(moved, max_pixels=SIDE * SIDE)

    assert header.orientation == 6
    assert (_kib("VmHWM") - before) / 1024 < 8
