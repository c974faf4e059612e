"""Hostile image files, generated on the fly: small on disk, expensive to decode."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def progressive_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", progressive=True, quality=90)
    return buffer.getvalue()


def jpeg_scan_bomb(width: int = 6000, height: int = 6000, scans: int = 2000) -> bytes:
    """A progressive JPEG whose last refinement scan is repeated until the file holds
    ``scans`` scans: decoders redo the scan each time, so decode time grows with the scan
    count while the file stays small (a 6000x6000 image of one flat colour, a few hundred KiB).
    """
    flat = Image.new("RGB", (width, height), (120, 130, 140))
    buffer = io.BytesIO()
    flat.save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    head, scan = data[:last_scan], data[last_scan:end]
    present = data.count(b"\xff\xda")
    return head + scan * (scans - present + 1) + b"\xff\xd9"
