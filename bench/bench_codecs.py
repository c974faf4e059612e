#!/usr/bin/env python
"""Which library decodes and encodes fastest here: the measurement behind imaging/codecs.py
and imaging/encoders.py (bench/README.md, "Codecs").

    pip install simplejpeg pyvips pyvips-binary   # optional candidates; missing ones are skipped
    python bench/bench_codecs.py

Single-threaded, one 1920x1080 photograph-like JPEG (and a 24 Mpx one for thumbnails), the
median of several runs, each library on the same bytes in the same run.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VIPS_CONCURRENCY"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from bench_imaging import photo  # noqa: E402
from PIL import Image  # noqa: E402


def optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        print(f"  ({name} not installed: skipped)")
        return None


def ms(func: Callable[[], Any], runs: int = 11) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        out = func()
        times.append((time.perf_counter() - started) * 1000)
        size = len(out) if isinstance(out, bytes | bytearray) else 0
    return statistics.median(times), size


def row(label: str, figures: tuple[float, int]) -> None:
    took, size = figures
    print(f"  {label:44} {took:8.1f} ms" + (f"  {size / 1e6:6.2f} MB" if size else ""))


def main() -> int:
    cv2.setNumThreads(1)
    simplejpeg, pyvips = optional("simplejpeg"), optional("pyvips")
    image = photo(1)
    jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    big = cv2.imencode(".jpg", cv2.resize(photo(3, 1500, 1000), (6000, 4000)),
                       [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    edges = cv2.Canny(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 50, 150)
    rgb = np.ascontiguousarray(image[:, :, ::-1])

    print("Decode a 1920x1080 JPEG")
    row("Pillow", ms(lambda: np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))))
    row("OpenCV imdecode (libjpeg-turbo)",
        ms(lambda: cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)))
    if simplejpeg:
        row("simplejpeg", ms(lambda: simplejpeg.decode_jpeg(jpeg, colorspace="BGR")))
    if pyvips:
        pyvips.cache_set_max(0)
        row("libvips (pyvips)", ms(lambda: pyvips.Image.jpegload_buffer(jpeg).numpy()))

    print("Thumbnail 320 px of a 6000x4000 JPEG")
    row("OpenCV full decode + INTER_AREA", ms(lambda: cv2.resize(
        cv2.imdecode(np.frombuffer(big, np.uint8), cv2.IMREAD_COLOR), (320, 213),
        interpolation=cv2.INTER_AREA), 5))
    row("OpenCV IMREAD_REDUCED_COLOR_8 + INTER_AREA", ms(lambda: cv2.resize(
        cv2.imdecode(np.frombuffer(big, np.uint8), cv2.IMREAD_REDUCED_COLOR_8), (320, 213),
        interpolation=cv2.INTER_AREA), 5))
    row("Pillow draft + resize", ms(lambda: (lambda im: (im.draft("RGB", (320, 213)),
                                                         im.convert("RGB").resize((320, 213))))(
        Image.open(io.BytesIO(big))), 5))
    if simplejpeg:
        row("simplejpeg min size", ms(lambda: simplejpeg.decode_jpeg(
            big, colorspace="BGR", min_height=213, min_width=320), 5))
    if pyvips:
        row("libvips thumbnail_buffer", ms(lambda: pyvips.Image.thumbnail_buffer(big, 320)
                                           .numpy(), 5))

    print("Encode an edge map (1920x1080, 0/255)")
    row("OpenCV PNG, 3 channels, level 3 (before)", ms(lambda: cv2.imencode(
        ".png", cv2.cvtColor(edges, cv2.COLOR_GRAY2BGR),
        [cv2.IMWRITE_PNG_COMPRESSION, 3])[1].tobytes()))
    row("OpenCV PNG, grey, level 1", ms(lambda: cv2.imencode(
        ".png", edges, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()))
    row("OpenCV PNG, bilevel (1 bit)", ms(lambda: cv2.imencode(
        ".png", edges, [cv2.IMWRITE_PNG_BILEVEL, 1])[1].tobytes()))

    def pil_png(array: np.ndarray, **options: Any) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG", **options)
        return buffer.getvalue()

    row("Pillow PNG, grey, level 1", ms(lambda: pil_png(edges, compress_level=1)))

    print("Encode a 1920x1080 photograph")
    for level, strategy, name in ((1, cv2.IMWRITE_PNG_STRATEGY_DEFAULT, "default"),
                                  (1, cv2.IMWRITE_PNG_STRATEGY_RLE, "RLE"),
                                  (3, cv2.IMWRITE_PNG_STRATEGY_DEFAULT, "default"),
                                  (9, cv2.IMWRITE_PNG_STRATEGY_DEFAULT, "default")):
        row(f"OpenCV PNG level {level}, {name}", ms(lambda lv=level, st=strategy: cv2.imencode(
            ".png", image, [cv2.IMWRITE_PNG_COMPRESSION, lv, cv2.IMWRITE_PNG_STRATEGY, st]
        )[1].tobytes(), 5))
    row("Pillow PNG level 1", ms(lambda: pil_png(rgb, compress_level=1), 5))
    row("OpenCV JPEG q90", ms(lambda: cv2.imencode(".jpg", image, [
        cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()))
    if simplejpeg:
        row("simplejpeg JPEG q90", ms(lambda: simplejpeg.encode_jpeg(image, 90,
                                                                     colorspace="BGR")))
    row("OpenCV WebP q90", ms(lambda: cv2.imencode(".webp", image, [
        cv2.IMWRITE_WEBP_QUALITY, 90])[1].tobytes(), 3))
    for method in (0, 2, 4, 6):
        def webp(m: int = method) -> bytes:
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, "WEBP", quality=90, method=m)
            return buffer.getvalue()
        row(f"Pillow WebP q90 method {method}", ms(webp, 3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
