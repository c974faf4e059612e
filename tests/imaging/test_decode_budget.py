"""The decode budget (scans, frames, pixels) is checked from the file structure before any
pixel is decoded; the fast JPEG path decodes exactly like Pillow; shrink-on-load."""

from __future__ import annotations

import io
import time

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from imaging.codecs import ImageError, decode_image, inspect_image, read_header, shrink_factor
from tests.imaging import bgr_to_rgb, photo
from tests.support.hostile import jpeg_scan_bomb, progressive_jpeg

BIG = 100_000_000


def _jpeg(image: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(bgr_to_rgb(image)).save(buffer, "JPEG", quality=92, **options)
    return buffer.getvalue()


def test_a_scan_bomb_is_refused_before_decoding_at_upload_and_in_a_task() -> None:
    bomb = jpeg_scan_bomb(6000, 6000, 2000)
    assert len(bomb) < 1_000_000

    cpu = time.process_time()
    for call in (
        lambda: inspect_image(bomb, max_bytes=len(bomb), max_pixels=40_000_000),
        lambda: decode_image(bomb, max_pixels=40_000_000),
    ):
        with pytest.raises(ImageError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (400, "too_many_scans")
    # Decoding it costs about a minute of CPU; refusing it is a walk over its markers.
    assert time.process_time() - cpu < 10


def test_the_scan_cap_is_the_callers_number() -> None:
    data = progressive_jpeg(64, 48)  # 10 scans

    assert decode_image(data, max_pixels=BIG, max_jpeg_scans=10).shape == (48, 64, 3)
    with pytest.raises(ImageError) as caught:
        decode_image(data, max_pixels=BIG, max_jpeg_scans=9)
    assert caught.value.code == "too_many_scans"


def test_animation_frames_count_as_pixels() -> None:
    frames = [Image.fromarray(bgr_to_rgb(photo(50, 40, seed))) for seed in range(4)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:])
    apng = buffer.getvalue()

    assert read_header(apng, max_pixels=8_000).frames == 4
    with pytest.raises(ImageError) as caught:
        inspect_image(apng, max_bytes=len(apng), max_pixels=7_999)
    assert (caught.value.status, caught.value.code) == (413, "too_many_pixels")
    assert "4 frames" in caught.value.message


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("grey", [False, True])
def test_every_exif_orientation_decodes_exactly_like_pillow(orientation: int, grey: bool) -> None:
    image = photo(30, 44)
    pil = Image.fromarray(bgr_to_rgb(image))
    if grey:
        pil = pil.convert("L")
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", quality=92, exif=exif)
    data = buffer.getvalue()

    decoded = decode_image(data, max_pixels=BIG)

    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    expected = np.asarray(reference)
    if not grey:
        expected = cv2.cvtColor(expected, cv2.COLOR_RGB2BGR)
    assert decoded.shape == expected.shape
    # Same libjpeg-turbo underneath; its IDCT may differ by one level between builds.
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 1
    info = inspect_image(data, max_bytes=len(data), max_pixels=BIG)
    assert (info.width, info.height) == (expected.shape[1], expected.shape[0])


@pytest.mark.parametrize(
    ("reduce_to", "factor"),
    [(None, 1), ((800, 600), 2), ((400, 300), 4), ((200, 150), 8), ((100, 10), 8),
     ((801, 10), 1)],
)
def test_shrink_on_load_keeps_at_least_the_requested_size(reduce_to, factor) -> None:
    data = _jpeg(photo(1200, 1600))  # 1600x1200
    header = read_header(data, max_pixels=BIG)

    assert shrink_factor(header, reduce_to) == factor
    decoded = decode_image(data, max_pixels=BIG, reduce_to=reduce_to)
    assert decoded.shape == (1200 // factor, 1600 // factor, 3)


def test_shrink_on_load_looks_like_the_full_decode_shrunk() -> None:
    data = _jpeg(photo(1200, 1600))
    full = cv2.resize(decode_image(data, max_pixels=BIG), (200, 150), interpolation=cv2.INTER_AREA)

    reduced = cv2.resize(decode_image(data, max_pixels=BIG, reduce_to=(200, 150)), (200, 150),
                         interpolation=cv2.INTER_AREA)

    # DCT scaling is itself an area average: the thumbnails differ by rounding only.
    assert np.abs(full.astype(int) - reduced.astype(int)).mean() < 2


def test_shrink_on_load_follows_the_exif_orientation() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated: 1200 wide, 1600 high
    data = _jpeg(photo(1200, 1600), exif=exif)

    decoded = decode_image(data, max_pixels=BIG, reduce_to=(300, 400))

    assert decoded.shape == (400, 300, 3)


def test_shrink_on_load_does_not_apply_to_other_formats() -> None:
    buffer = io.BytesIO()
    Image.fromarray(bgr_to_rgb(photo(400, 400))).save(buffer, "PNG")

    assert decode_image(buffer.getvalue(), max_pixels=BIG, reduce_to=(50, 50)).shape == (
        400, 400, 3)
