"""Encoders: one-channel results stay grey (bilevel when binary), effort settings."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from imaging.codecs import EFFORTS, ImageError, encode_image, is_bilevel
from imaging.samples import make_scene
from tests.imaging import photo


def png_bit_depth_and_colour_type(data: bytes) -> tuple[int, int]:
    assert data[12:16] == b"IHDR"
    _width, _height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return depth, colour


def test_an_edge_map_is_written_as_a_one_bit_grey_png_and_reads_back_equal() -> None:
    edges = cv2.Canny(cv2.cvtColor(photo(120, 160), cv2.COLOR_BGR2GRAY), 50, 150)
    assert is_bilevel(edges)

    data = encode_image(edges, "png")

    assert png_bit_depth_and_colour_type(data) == (1, 0)
    assert (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) == edges).all()


def test_a_grey_image_is_written_as_an_eight_bit_grey_png() -> None:
    grey = cv2.cvtColor(photo(60, 80), cv2.COLOR_BGR2GRAY)
    assert not is_bilevel(grey)

    data = encode_image(grey, "png")

    assert png_bit_depth_and_colour_type(data) == (8, 0)
    assert (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) == grey).all()


@pytest.mark.parametrize("effort", EFFORTS)
@pytest.mark.parametrize("layout", ["grey", "bgr", "bgra"])
def test_every_png_effort_is_lossless(effort: str, layout: str) -> None:
    image = photo(60, 80)
    if layout == "grey":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif layout == "bgra":
        image = np.dstack((image, np.arange(60 * 80, dtype=np.uint8).reshape(60, 80)))

    data = encode_image(image, "png", effort=effort)

    assert (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) == image).all()


def test_the_small_effort_makes_flat_graphics_smaller() -> None:
    graphic = make_scene(640, 480, seed=4, kind="shapes")

    fast = encode_image(graphic, "png", effort="fast")
    small = encode_image(graphic, "png", effort="small")

    assert len(small) < len(fast)


@pytest.mark.parametrize("effort", EFFORTS)
def test_webp_at_quality_100_is_lossless_at_every_effort(effort: str) -> None:
    image = photo(40, 56)

    data = encode_image(image, "webp", quality=100, effort=effort)

    assert (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) == image).all()


def test_webp_keeps_alpha_and_writes_grey_input() -> None:
    bgra = np.dstack((photo(40, 56), np.full((40, 56), 128, np.uint8)))
    decoded = cv2.imdecode(np.frombuffer(encode_image(bgra, "webp", quality=100), np.uint8),
                           cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (40, 56, 4) and (decoded[:, :, 3] == 128).all()
    grey = cv2.cvtColor(photo(40, 56), cv2.COLOR_BGR2GRAY)
    decoded = cv2.imdecode(np.frombuffer(encode_image(grey, "webp", quality=100), np.uint8),
                           cv2.IMREAD_GRAYSCALE)
    assert (decoded == grey).all()


def test_an_unknown_effort_is_refused() -> None:
    with pytest.raises(ImageError) as caught:
        encode_image(photo(8, 8), "png", effort="maximum")
    assert (caught.value.status, caught.value.code) == (400, "invalid_effort")
