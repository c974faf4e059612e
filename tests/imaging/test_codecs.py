"""Sniffing, inspecting, decoding and encoding image bytes."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from imaging.codecs import (
    CONTENT_TYPES,
    EXTENSIONS,
    FORMATS,
    OUTPUT_FORMATS,
    ImageError,
    ImageInfo,
    decode_image,
    encode_image,
    inspect_image,
    output_format_for,
    sniff_format,
)
from tests.imaging import bgr_to_rgb, photo, rgb_to_bgr, with_alpha

MAX_BYTES = 5_000_000
MAX_PIXELS = 4_000_000


def pil_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_claiming(width: int, height: int, idat: bytes) -> bytes:
    """A PNG whose header claims ``width x height`` RGB pixels, followed by ``idat``."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def inspect(data: bytes, **limits) -> ImageInfo:
    return inspect_image(data, **{"max_bytes": MAX_BYTES, "max_pixels": MAX_PIXELS, **limits})


def decode(data: bytes) -> np.ndarray:
    return decode_image(data, max_pixels=MAX_PIXELS)


# --- formats by content -------------------------------------------------------------------

LOSSLESS = [
    ("png", "PNG", {}),
    ("webp", "WEBP", {"lossless": True}),
    ("bmp", "BMP", {}),
    ("tiff", "TIFF", {}),
]


@pytest.mark.parametrize(("fmt", "pil_format", "options"), LOSSLESS)
def test_lossless_formats_round_trip_exactly_and_are_recognised_by_content(
    fmt, pil_format, options
):
    image = photo(24, 40)
    data = pil_bytes(Image.fromarray(bgr_to_rgb(image)), pil_format, **options)
    assert sniff_format(data) == fmt
    assert inspect(data) == ImageInfo(format=fmt, width=40, height=24, mode="RGB")
    decoded = decode(data)
    assert decoded.dtype == np.uint8 and decoded.shape == (24, 40, 3)
    assert (decoded == image).all()


def test_jpeg_round_trips_within_compression_error():
    image = photo(32, 48)
    data = pil_bytes(Image.fromarray(bgr_to_rgb(image)), "JPEG", quality=95)
    assert sniff_format(data) == "jpeg"
    assert inspect(data) == ImageInfo(format="jpeg", width=48, height=32, mode="RGB")
    decoded = decode(data)
    assert decoded.shape == image.shape
    assert np.abs(decoded.astype(int) - image).mean() < 7


@pytest.mark.parametrize(
    ("fmt", "pil_format"), [("png", "PNG"), ("tiff", "TIFF"), ("webp", "WEBP")]
)
def test_alpha_is_decoded_as_bgra(fmt, pil_format):
    image = with_alpha(photo(20, 30))
    options = {"lossless": True, "exact": True} if fmt == "webp" else {}
    data = pil_bytes(Image.fromarray(bgr_to_rgb(image), "RGBA"), pil_format, **options)
    decoded = decode(data)
    assert decoded.shape == (20, 30, 4)
    assert (decoded == image).all()


def test_grey_images_decode_to_two_dimensions():
    gray = photo()[:, :, 1].copy()
    for pil_format in ("PNG", "BMP", "TIFF"):
        decoded = decode(pil_bytes(Image.fromarray(gray), pil_format))
        assert decoded.shape == gray.shape and (decoded == gray).all()


def test_sixteen_bit_grey_png_is_scaled_to_eight_bits():
    values = (np.arange(40 * 30, dtype=np.uint32).reshape(30, 40) * 54).astype(np.uint16)
    ok, data = cv2.imencode(".png", values)
    assert ok
    decoded = decode(data.tobytes())
    assert decoded.dtype == np.uint8 and decoded.shape == (30, 40)
    assert (decoded == (values >> 8)).all()
    assert inspect(data.tobytes()).mode.startswith("I")


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_colour_png_is_scaled_to_eight_bits(channels):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 65536, (12, 16, channels), dtype=np.uint16)
    ok, data = cv2.imencode(".png", values)  # OpenCV writes BGR(A) order
    assert ok
    decoded = decode(data.tobytes())
    assert decoded.shape == values.shape
    assert (decoded == (values >> 8)).all()


def test_palette_png_becomes_bgr_and_bgra_with_transparency():
    rgb = bgr_to_rgb(photo(16, 16))
    palette = Image.fromarray(rgb).quantize(colors=16)
    decoded = decode(pil_bytes(palette, "PNG"))
    expected = rgb_to_bgr(np.asarray(palette.convert("RGB")))
    assert decoded.shape == (16, 16, 3) and (decoded == expected).all()
    transparent_index = int(np.asarray(palette)[0, 0])
    decoded = decode(pil_bytes(palette, "PNG", transparency=transparent_index))
    assert decoded.shape == (16, 16, 4)
    assert decoded[0, 0, 3] == 0
    assert (decoded[:, :, 3] == np.where(np.asarray(palette) == transparent_index, 0, 255)).all()


def test_grey_with_alpha_and_cmyk_are_converted():
    gray = photo()[:, :, 0].copy()
    alpha = photo()[:, :, 2].copy()
    la = Image.merge("LA", (Image.fromarray(gray), Image.fromarray(alpha)))
    decoded = decode(pil_bytes(la, "PNG"))
    assert decoded.shape == (*gray.shape, 4)
    assert (decoded[:, :, 0] == gray).all() and (decoded[:, :, 3] == alpha).all()
    cmyk = Image.fromarray(bgr_to_rgb(photo())).convert("CMYK")
    decoded = decode(pil_bytes(cmyk, "JPEG", quality=95))
    assert decoded.shape == (*gray.shape, 3)
    assert np.abs(decoded.astype(int) - photo()).mean() < 6


def test_jpeg_exif_orientation_is_applied():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = (0, 0, 255)  # left half red, right half blue
    image[:, 20:] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    data = pil_bytes(Image.fromarray(bgr_to_rgb(image)), "JPEG", quality=95, exif=exif)
    info = inspect(data)
    assert (info.width, info.height) == (20, 40)
    decoded = decode(data)
    assert decoded.shape == (40, 20, 3)
    expected = np.rot90(image, k=-1)  # clockwise: the left half ends up on top
    assert np.abs(decoded.astype(int) - expected).mean() < 4
    assert decoded[5, 10, 2] > 200 and decoded[35, 10, 0] > 200


# --- refusals -----------------------------------------------------------------------------


def gif_bytes() -> bytes:
    return pil_bytes(Image.new("P", (4, 4)), "GIF")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(gif_bytes(), id="gif"),
        pytest.param(b"hello, this is plain text\n" * 3, id="text"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", id="pdf"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt ", id="wav"),
        pytest.param(b"BM" + b"\x00" * 12 + b"\x07\x00\x00\x00" + b"\x00" * 20, id="fake bmp"),
    ],
)
def test_other_content_is_unsupported_media_type(data):
    assert sniff_format(data) is None
    for call in (lambda: inspect(data), lambda: decode(data)):
        with pytest.raises(ImageError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("pil_format", "keep"),
    [("JPEG", 0.6), ("PNG", 0.6), ("WEBP", 0.6), ("TIFF", 0.5), ("BMP", 0.5)],
)
def test_truncated_files_are_corrupt(pil_format, keep):
    data = pil_bytes(Image.fromarray(bgr_to_rgb(photo(64, 64))), pil_format)
    truncated = data[: int(len(data) * keep)]
    for call in (lambda: inspect(truncated), lambda: decode(truncated)):
        with pytest.raises(ImageError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (400, "corrupt_image")


def test_damaged_png_data_passes_inspection_and_is_corrupt_when_decoded():
    # Inspection reads headers and structure only; the pixel data is checked by the decode,
    # which runs in a task's bounded process.
    data = bytearray(pil_bytes(Image.fromarray(bgr_to_rgb(photo(64, 64))), "PNG"))
    start = data.index(b"IDAT") + 8
    data[start : start + 64] = b"\xff" * 64
    assert inspect(bytes(data)).format == "png"
    with pytest.raises(ImageError) as caught:
        decode(bytes(data))
    assert caught.value.code == "corrupt_image"


def test_a_png_claiming_ten_billion_pixels_is_refused_from_its_header():
    # The pixel data is garbage: decoding it would raise corrupt_image (400), so a 413
    # proves the header check came first.
    bomb = png_claiming(100_000, 100_000, b"\x78\x9c" + b"\x00garbage" * 8)
    assert len(bomb) < 200
    for call in (lambda: inspect(bomb), lambda: decode(bomb)):
        with pytest.raises(ImageError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (413, "too_many_pixels")
    garbage = png_claiming(10, 10, b"\x78\x9c" + b"\x00garbage" * 8)
    assert inspect(garbage).format == "png"  # a whole structure: only decoding sees garbage
    with pytest.raises(ImageError) as caught:
        decode(garbage)
    assert caught.value.code == "corrupt_image"


def test_a_jpeg_claiming_a_huge_size_is_refused_from_its_header():
    data = bytearray(pil_bytes(Image.fromarray(bgr_to_rgb(photo(16, 16))), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)  # height, width
    with pytest.raises(ImageError) as caught:
        inspect(bytes(data))
    assert caught.value.code == "too_many_pixels"


def test_the_pixel_cap_is_the_callers_number():
    data = pil_bytes(Image.fromarray(bgr_to_rgb(photo(100, 100))), "PNG")
    assert inspect(data, max_pixels=10_000).width == 100
    assert decode_image(data, max_pixels=10_000).shape == (100, 100, 3)
    with pytest.raises(ImageError) as caught:
        inspect(data, max_pixels=9_999)
    assert (caught.value.status, caught.value.code) == (413, "too_many_pixels")
    with pytest.raises(ImageError):
        decode_image(data, max_pixels=9_999)


def test_files_over_max_bytes_are_refused_before_anything_else():
    data = pil_bytes(Image.fromarray(bgr_to_rgb(photo())), "PNG")
    assert inspect(data, max_bytes=len(data)).format == "png"
    with pytest.raises(ImageError) as caught:
        inspect(data, max_bytes=len(data) - 1)
    assert (caught.value.status, caught.value.code) == (413, "file_too_large")
    with pytest.raises(ImageError) as caught:
        inspect(b"not an image at all", max_bytes=4)
    assert caught.value.code == "file_too_large"


def test_an_empty_file_is_a_bad_request():
    for call in (lambda: inspect(b""), lambda: decode(b"")):
        with pytest.raises(ImageError) as caught:
            call()
        assert (caught.value.status, caught.value.code) == (400, "empty_file")


def test_image_error_serialises_its_code_and_message():
    error = ImageError("too big", status=413, code="file_too_large")
    assert error.to_dict() == {"error": "file_too_large", "message": "too big"}
    assert str(error) == "too big"


# --- encoding -----------------------------------------------------------------------------


@pytest.mark.parametrize("image", [photo()[:, :, 0].copy(), photo(), with_alpha(photo())])
def test_png_encoding_is_lossless_for_every_layout(image):
    data = encode_image(image, "png")
    assert sniff_format(data) == "png"
    assert (decode(data) == image).all()


@pytest.mark.parametrize("image", [photo(), with_alpha(photo())])
def test_webp_at_quality_100_is_lossless(image):
    data = encode_image(image, "webp", quality=100)
    assert sniff_format(data) == "webp"
    decoded = decode(data)
    assert decoded.shape == image.shape
    # The encoder may change the colour of fully transparent pixels (nobody can see it).
    visible = image[:, :, 3] > 0 if image.shape[2] == 4 else np.ones(image.shape[:2], bool)
    assert (decoded[visible] == image[visible]).all()
    if image.shape[2] == 4:
        assert (decoded[:, :, 3] == image[:, :, 3]).all()


def test_webp_below_100_is_lossy_and_smaller():
    image = photo(64, 64)
    lossy = encode_image(image, "webp", quality=50)
    assert len(lossy) < len(encode_image(image, "webp", quality=100))
    decoded = decode(lossy)
    assert decoded.shape == image.shape and not (decoded == image).all()
    assert np.abs(decoded.astype(int) - image).mean() < 12


def test_jpeg_encoding_drops_alpha_and_honours_quality():
    image = with_alpha(photo(64, 64))
    high = encode_image(image, "jpeg", quality=95)
    low = encode_image(image, "jpeg", quality=20)
    assert sniff_format(high) == "jpeg" and len(low) < len(high)
    decoded = decode(high)
    assert decoded.shape == (64, 64, 3)
    assert np.abs(decoded.astype(int) - image[:, :, :3]).mean() < 7


@pytest.mark.parametrize("fmt", ["bmp", "tiff", "gif", "exe"])
def test_encoding_other_formats_is_refused(fmt):
    with pytest.raises(ImageError) as caught:
        encode_image(photo(), fmt)
    assert (caught.value.status, caught.value.code) == (400, "unsupported_output_format")


@pytest.mark.parametrize(
    ("input_format", "requested", "expected"),
    [
        ("jpeg", None, "jpeg"),
        ("png", None, "png"),
        ("webp", None, "webp"),
        ("bmp", None, "png"),
        ("tiff", None, "png"),
        ("bmp", "jpeg", "jpeg"),
        ("png", "webp", "webp"),
        ("png", "JPG", "jpeg"),
        ("jpeg", "", "jpeg"),
    ],
)
def test_output_format_is_the_request_else_the_input_else_png(input_format, requested, expected):
    assert output_format_for(input_format, requested) == expected


def test_requesting_an_unwritable_output_format_is_refused():
    with pytest.raises(ImageError) as caught:
        output_format_for("png", "tiff")
    assert caught.value.code == "unsupported_output_format"


def test_format_tables_cover_every_format():
    assert set(EXTENSIONS) == set(CONTENT_TYPES) == set(FORMATS)
    assert set(OUTPUT_FORMATS) <= set(FORMATS)
    assert EXTENSIONS["jpeg"] == ".jpg" and CONTENT_TYPES["webp"] == "image/webp"
