"""Decode cost read from the file structure: JPEG scans and animation frames."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from imaging.decodecost import StructureError, frame_count, jpeg_scan_count
from tests.support.hostile import jpeg_scan_bomb, progressive_jpeg


def _noise(seed: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("options", "scans"),
    [
        ({}, 1),
        ({"progressive": True}, 10),  # libjpeg's default progressive script for colour
        ({"restart_marker_rows": 1}, 1),
        ({"progressive": True, "restart_marker_blocks": 2}, 10),
    ],
)
def test_scan_count_matches_what_the_encoder_wrote(options, scans) -> None:
    data = _encode(_noise(1), "JPEG", **options)

    assert jpeg_scan_count(data) == scans


def test_a_scan_bomb_is_counted_without_decoding_it() -> None:
    bomb = jpeg_scan_bomb(width=2000, height=2000, scans=2000)

    cpu = time.process_time()
    assert jpeg_scan_count(bomb) == 2000
    assert jpeg_scan_count(bomb, stop_after=100) == 101  # stops as soon as the cap is passed
    # Behaviour, not a speed target: the walk stays linear in the file, far below a decode.
    assert time.process_time() - cpu < 5


def test_a_truncated_jpeg_counts_the_scans_it_has() -> None:
    data = progressive_jpeg(64, 48)

    assert jpeg_scan_count(data[: len(data) // 2]) >= 1


@pytest.mark.parametrize("data", [b"", b"\x89PNG", b"\xff\xd8\xff\xe0\x00"])
def test_broken_structures_are_refused(data: bytes) -> None:
    with pytest.raises(StructureError):
        jpeg_scan_count(data)


def test_animation_frames_are_counted_in_png_webp_and_tiff() -> None:
    frames = [_noise(seed) for seed in range(3)]

    assert frame_count(_encode(frames[0], "PNG"), "png") == 1
    assert frame_count(_encode(frames[0], "PNG", save_all=True, append_images=frames[1:]),
                       "png") == 3
    assert frame_count(_encode(frames[0], "WEBP"), "webp") == 1
    assert frame_count(_encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
                       "webp") == 3
    assert frame_count(_encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]),
                       "tiff") == 3
    assert frame_count(_encode(frames[0], "JPEG"), "jpeg") == 1
