"""Each filter against an independent reference: a NumPy formula, or Pillow where Pillow
defines the semantics (ImageEnhance, ImageOps, Image.rotate)."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from imaging import filters
from imaging.filters import FILTERS, filter_schemas
from tests.imaging import bgr_to_rgb, photo, rgb_to_bgr, with_alpha

# --- independent references ---------------------------------------------------------------


def bt601(image: np.ndarray) -> np.ndarray:
    """Grey level from the ITU-R BT.601 weights, in floating point."""
    b, g, r = (image[:, :, i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


def gaussian_reference(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian in float64 with reflect-101 borders (NumPy's "reflect")."""
    radius = max(1, math.ceil(4 * sigma))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-(taps**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    data = image.astype(np.float64)
    extra = [(0, 0)] * (data.ndim - 2)
    padded = np.pad(data, [(radius, radius), (0, 0), *extra], mode="reflect")
    rows = sum(k * padded[i : i + data.shape[0]] for i, k in enumerate(kernel))
    padded = np.pad(rows, [(0, 0), (radius, radius), *extra], mode="reflect")
    return sum(k * padded[:, i : i + data.shape[1]] for i, k in enumerate(kernel))


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


def pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(bgr_to_rgb(image))


def from_pil(image: Image.Image) -> np.ndarray:
    return rgb_to_bgr(np.asarray(image))


# --- grayscale ----------------------------------------------------------------------------


def test_grayscale_of_colour_is_bt601_in_one_channel():
    image = photo()
    out = filters.grayscale(image)
    assert out.shape == image.shape[:2] and out.dtype == np.uint8
    assert max_diff(out, np.rint(bt601(image))) <= 1


def test_grayscale_of_grey_input_is_unchanged_and_stays_single_channel():
    gray = photo()[:, :, 1].copy()
    out = filters.grayscale(gray)
    assert out.shape == gray.shape
    assert (out == gray).all()
    assert out is not gray


def test_grayscale_keeps_the_alpha_channel_untouched():
    image = with_alpha(photo())
    out = filters.grayscale(image)
    assert out.shape == image.shape
    assert (out[:, :, 3] == image[:, :, 3]).all()
    assert (out[:, :, 0] == out[:, :, 1]).all() and (out[:, :, 1] == out[:, :, 2]).all()
    assert max_diff(out[:, :, 0], np.rint(bt601(image[:, :, :3]))) <= 1


# --- blur and sharpen ---------------------------------------------------------------------


@pytest.mark.parametrize("radius", [0.5, 1.0, 2.0, 4.5])
def test_blur_matches_a_numpy_gaussian_with_sigma_equal_to_radius(radius):
    image = photo(40, 56)
    out = filters.blur(image, radius=radius)
    assert max_diff(out, np.rint(gaussian_reference(image, radius))) <= 2


def test_blur_with_radius_zero_returns_an_identical_copy():
    image = photo()
    out = filters.blur(image, radius=0)
    assert (out == image).all() and out is not image


def test_blur_leaves_alpha_alone_and_smooths_colour():
    image = with_alpha(photo())
    out = filters.blur(image, radius=3)
    assert (out[:, :, 3] == image[:, :, 3]).all()
    assert out[:, :, :3].std() < image[:, :, :3].std()


def gaussian3_reference(image: np.ndarray) -> np.ndarray:
    """3x3 Gaussian of sigma 1 in float64 with reflect-101 borders."""
    taps = np.exp(-np.array([1.0, 0.0, 1.0]) / 2)
    kernel = np.outer(taps, taps) / np.outer(taps, taps).sum()
    data = image.astype(np.float64)
    extra = [(0, 0)] * (data.ndim - 2)
    padded = np.pad(data, [(1, 1), (1, 1), *extra], mode="reflect")
    height, width = data.shape[:2]
    return sum(kernel[dy, dx] * padded[dy : dy + height, dx : dx + width]
               for dy in range(3) for dx in range(3))


@pytest.mark.parametrize("intensity", [0.0, 1.0, 2.5, 10.0])
def test_sharpen_is_an_unsharp_mask_on_a_3x3_gaussian(intensity):
    image = photo(40, 56)
    data = image.astype(np.float64)
    expected = np.clip(np.rint(data + intensity * (data - gaussian3_reference(image))), 0, 255)
    # One 3x3 convolution in OpenCV's float arithmetic, rounded once: at most one level off.
    assert max_diff(filters.sharpen(image, intensity=intensity), expected) <= 1


def test_sharpen_increases_local_contrast_on_grey_input():
    gray = photo()[:, :, 2].copy()
    out = filters.sharpen(gray, intensity=3)
    assert out.ndim == 2
    laplacian = lambda img: np.abs(cv2.Laplacian(img.astype(np.float32), cv2.CV_32F)).mean()  # noqa: E731
    assert laplacian(out) > 1.5 * laplacian(gray)


# --- edges --------------------------------------------------------------------------------


def test_edges_equal_canny_on_an_independently_computed_grey_level():
    image = np.full((120, 160, 3), 30, np.uint8)
    cv2.rectangle(image, (20, 20), (90, 80), (40, 200, 90), -1)
    cv2.circle(image, (120, 70), 30, (250, 120, 10), -1)
    gray = np.rint(bt601(image)).astype(np.uint8)
    out = filters.edges(image, threshold1=50, threshold2=150)
    expected = cv2.Canny(gray, 50, 150)
    assert (expected > 0).sum() > 200  # the reference really found the outlines
    assert out.shape == image.shape[:2]  # one channel
    assert (out == expected).all()


def test_edges_keep_grey_layout_and_alpha():
    image = with_alpha(photo())
    out = filters.edges(image)
    assert out.shape == image.shape
    assert (out[:, :, 3] == image[:, :, 3]).all()
    assert set(np.unique(out[:, :, :3])) <= {0, 255}
    gray_out = filters.edges(image[:, :, 0].copy())
    assert gray_out.ndim == 2


# --- brightness and contrast (Pillow's ImageEnhance defines them) -------------------------


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.0, 1.2, 3.0])
def test_brightness_matches_pillow_image_enhance(factor):
    image = photo()
    expected = from_pil(ImageEnhance.Brightness(pil(image)).enhance(factor))
    assert max_diff(filters.brightness(image, factor=factor), expected) <= 1


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.0, 1.2, 3.0])
def test_contrast_matches_pillow_image_enhance(factor):
    image = photo(seed=3)
    expected = from_pil(ImageEnhance.Contrast(pil(image)).enhance(factor))
    assert max_diff(filters.contrast(image, factor=factor), expected) <= 1


def test_brightness_and_contrast_keep_alpha():
    image = with_alpha(photo())
    for out in (filters.brightness(image, factor=2), filters.contrast(image, factor=2)):
        assert (out[:, :, 3] == image[:, :, 3]).all()
        assert not (out[:, :, :3] == image[:, :, :3]).all()


def test_contrast_of_grey_input_scales_around_its_mean():
    gray = photo()[:, :, 1].copy()
    mean = int(gray.mean() + 0.5)
    expected = np.clip(np.rint(mean + 2.0 * (gray.astype(np.float64) - mean)), 0, 255)
    assert max_diff(filters.contrast(gray, factor=2.0), expected) == 0


# --- resize -------------------------------------------------------------------------------


def test_resize_down_by_three_averages_three_by_three_blocks():
    image = photo(48, 63)
    out = filters.resize(image, width=21)
    blocks = image.reshape(16, 3, 21, 3, 3).astype(np.float64).mean(axis=(1, 3))
    assert max_diff(out, np.rint(blocks)) <= 1


def test_resize_up_matches_pillow_bilinear():
    image = photo(30, 40)
    out = filters.resize(image, width=100)
    assert out.shape == (75, 100, 3)
    expected = from_pil(pil(image).resize((100, 75), Image.Resampling.BILINEAR))
    assert max_diff(out, expected) <= 2


@pytest.mark.parametrize(
    ("params", "shape"),
    [
        ({"width": 32}, (24, 32)),
        ({"height": 12}, (12, 16)),
        ({"width": 10, "height": 50}, (50, 10)),
        ({"scale": 2.0}, (96, 128)),
        ({"scale": 0.01}, (1, 1)),
    ],
)
def test_resize_keeps_aspect_unless_both_sides_are_given(params, shape):
    out = filters.resize(photo(48, 64), **params)
    assert out.shape == (*shape, 3)


def test_resize_transforms_alpha_with_the_pixels():
    image = with_alpha(photo(48, 64))
    out = filters.resize(image, scale=0.5)
    assert out.shape == (24, 32, 4)
    blocks = image[:, :, 3].reshape(24, 2, 32, 2).astype(np.float64).mean(axis=(1, 3))
    assert max_diff(out[:, :, 3], np.rint(blocks)) <= 1


@pytest.mark.parametrize("params", [{}, {"scale": 2.0, "width": 10}, {"scale": 1.0, "height": 3}])
def test_resize_refuses_anything_but_exactly_one_way_of_sizing(params):
    with pytest.raises(filters.ParamError):
        filters.resize(photo(), **params)


# --- rotate -------------------------------------------------------------------------------


@pytest.mark.parametrize("degrees", [90, 180, 270, -90, 360, -270])
@pytest.mark.parametrize("expand", [True, False])
def test_rotate_by_multiples_of_90_equals_pillow_exactly(degrees, expand):
    image = photo(30, 50)
    out = filters.rotate(image, degrees=degrees, expand=expand)
    expected = from_pil(pil(image).rotate(degrees, expand=expand))
    assert out.shape == expected.shape
    assert (out == expected).all()


def test_rotate_by_90_is_lossless_and_counter_clockwise():
    image = with_alpha(photo(30, 50))
    out = filters.rotate(image, degrees=90)
    assert out.shape == (50, 30, 4)
    # Counter-clockwise: the top-right corner moves to the top-left.
    assert (out[0, 0] == image[0, -1]).all()
    assert (filters.rotate(out, degrees=-90) == image).all()


@pytest.mark.parametrize("degrees", [30, 45, -20, 123.4])
@pytest.mark.parametrize("expand", [True, False])
def test_rotate_by_any_angle_matches_pillow_geometry(degrees, expand):
    image = photo(60, 90)
    out = filters.rotate(image, degrees=degrees, expand=expand)
    expected = from_pil(pil(image).rotate(degrees, Image.Resampling.BILINEAR, expand=expand))
    assert out.shape == expected.shape
    # Compare away from the rotated borders, where the two libraries blend the fill differently.
    inside = np.asarray(Image.new("L", (90, 60), 255).rotate(degrees, expand=expand))
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0
    assert inside.sum() > 1000
    assert max_diff(out[inside], expected[inside]) <= 1
    # The corners of the canvas are outside the rotated image: black.
    assert (out[0, 0] == 0).all()


def test_rotate_fills_new_area_of_bgra_with_transparent_pixels():
    image = np.full((20, 20, 4), 255, np.uint8)
    out = filters.rotate(image, degrees=45, expand=True)
    assert out.shape[2] == 4
    assert out[0, 0, 3] == 0
    assert out[out.shape[0] // 2, out.shape[1] // 2, 3] == 255


# --- flip, sepia, threshold, invert -------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "reference"),
    [
        ("horizontal", ImageOps.mirror),
        ("vertical", ImageOps.flip),
        ("both", lambda im: ImageOps.flip(ImageOps.mirror(im))),
    ],
)
def test_flip_matches_pillow_image_ops(direction, reference):
    image = photo()
    assert (filters.flip(image, direction=direction) == from_pil(reference(pil(image)))).all()


def test_flip_moves_alpha_with_the_pixels():
    image = with_alpha(photo())
    assert (filters.flip(image, direction="horizontal") == image[:, ::-1]).all()


def test_sepia_applies_the_classic_matrix_to_rgb():
    image = photo()
    b, g, r = (image[:, :, i].astype(np.float64) for i in range(3))
    expected_r = 0.393 * r + 0.769 * g + 0.189 * b
    expected_g = 0.349 * r + 0.686 * g + 0.168 * b
    expected_b = 0.272 * r + 0.534 * g + 0.131 * b
    expected = np.clip(np.rint(np.dstack((expected_b, expected_g, expected_r))), 0, 255)
    assert max_diff(filters.sepia(image), expected) <= 1


def test_sepia_turns_grey_into_colour_and_keeps_alpha():
    gray = photo()[:, :, 0].copy()
    out = filters.sepia(gray)
    assert out.shape == (*gray.shape, 3)
    assert (out[:, :, 2] >= out[:, :, 0]).all()  # warm: red never below blue
    rgba = with_alpha(photo())
    assert (filters.sepia(rgba)[:, :, 3] == rgba[:, :, 3]).all()


@pytest.mark.parametrize("value", [0, 100, 128, 255])
def test_threshold_binary_whitens_pixels_above_the_value(value):
    image = photo()
    gray = np.rint(bt601(image))
    out = filters.threshold(image, value=value, mode="binary")
    inverse = filters.threshold(image, value=value, mode="binary_inv")
    # Pixels whose grey level is within rounding of the value may go either way.
    sure = np.abs(gray - value) >= 1
    assert out.ndim == 2
    assert (out[sure] == np.where(gray > value, 255, 0)[sure]).all()
    assert (inverse == 255 - out).all()


def otsu_reference(gray: np.ndarray) -> int:
    """The threshold maximising between-class variance (Otsu 1979)."""
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    best, best_t = -1.0, 0
    for t in range(255):
        w0, w1 = hist[: t + 1].sum(), hist[t + 1 :].sum()
        if w0 == 0 or w1 == 0:
            continue
        m0 = (hist[: t + 1] * levels[: t + 1]).sum() / w0
        m1 = (hist[t + 1 :] * levels[t + 1 :]).sum() / w1
        variance = w0 * w1 * (m0 - m1) ** 2
        if variance > best:
            best, best_t = variance, t
    return best_t


def test_threshold_otsu_splits_at_the_otsu_level_and_ignores_value():
    rng = np.random.default_rng(5)
    gray = np.clip(
        np.concatenate([rng.normal(60, 12, 3000), rng.normal(180, 15, 2000)]), 0, 255
    ).astype(np.uint8)
    gray = gray.reshape(50, 100)
    level = otsu_reference(gray)
    out = filters.threshold(gray, value=3, mode="otsu")
    assert out.ndim == 2
    assert (out == np.where(gray > level, 255, 0)).all()


def test_threshold_keeps_layout_and_alpha():
    image = with_alpha(photo())
    out = filters.threshold(image)
    assert out.shape == image.shape and (out[:, :, 3] == image[:, :, 3]).all()


def test_invert_is_the_negative_of_colour_only():
    image = with_alpha(photo())
    out = filters.invert(image)
    assert (out[:, :, :3] == 255 - image[:, :, :3]).all()
    assert (out[:, :, 3] == image[:, :, 3]).all()


# --- every filter, every layout, tiny images ----------------------------------------------

SAMPLE_PARAMS = {"resize": {"scale": 2.0}}
GEOMETRIC = {"resize", "rotate", "flip"}


def layouts() -> list[np.ndarray]:
    bgr = photo(5, 7)
    return [bgr[:, :, 1].copy(), bgr, with_alpha(bgr)]


@pytest.mark.parametrize("name", list(FILTERS))
@pytest.mark.parametrize("shape", [(1, 1), (1, 1, 3), (1, 1, 4), (1, 9, 3), (9, 1, 4)])
def test_every_filter_handles_one_pixel_wide_images(name, shape):
    image = np.full(shape, 77, np.uint8)
    params = {**FILTERS[name].defaults(), **SAMPLE_PARAMS.get(name, {})}
    out = FILTERS[name].func(image, **params)
    assert out.dtype == np.uint8
    assert out.ndim in (2, 3) and out.size > 0


GREY_RESULT = ("grayscale", "edges", "threshold")


@pytest.mark.parametrize("name", list(FILTERS))
def test_every_filter_returns_uint8_in_a_supported_layout(name):
    params = {**FILTERS[name].defaults(), **SAMPLE_PARAMS.get(name, {})}
    for image in layouts():
        out = FILTERS[name].func(image, **params)
        assert out.dtype == np.uint8
        channels = 1 if out.ndim == 2 else out.shape[2]
        in_channels = 1 if image.ndim == 2 else image.shape[2]
        if name == "sepia" and in_channels == 1:
            assert channels == 3
        elif name in GREY_RESULT and in_channels == 3:
            assert channels == 1, (name, out.shape)  # stays one channel until colour is needed
        else:
            assert channels == in_channels, (name, image.shape, out.shape)
        if in_channels == 4 and name not in GEOMETRIC:
            assert (out[:, :, 3] == image[:, :, 3]).all(), name


def test_filters_do_not_modify_their_input():
    image = with_alpha(photo())
    before = image.copy()
    for name, spec in FILTERS.items():
        spec.func(image, **{**spec.defaults(), **SAMPLE_PARAMS.get(name, {})})
    assert (image == before).all()


# --- the registry -------------------------------------------------------------------------


def test_registry_lists_the_documented_filters_in_order():
    assert list(FILTERS) == [
        "grayscale",
        "blur",
        "sharpen",
        "edges",
        "brightness",
        "contrast",
        "resize",
        "rotate",
        "flip",
        "sepia",
        "threshold",
        "invert",
    ]


def test_filter_schemas_are_json_and_describe_every_parameter():
    schemas = filter_schemas()
    assert json.loads(json.dumps(schemas)) == schemas
    by_name = {schema["name"]: schema for schema in schemas}
    blur = by_name["blur"]
    assert blur["params"] == [
        {
            "name": "radius",
            "type": "float",
            "default": 2.0,
            "description": blur["params"][0]["description"],
            "minimum": 0.0,
            "maximum": 50.0,
        }
    ]
    flip = by_name["flip"]["params"][0]
    assert flip["choices"] == ["horizontal", "vertical", "both"]
    width = by_name["resize"]["params"][0]
    assert width["nullable"] is True and width["default"] is None
    assert "nullable" not in blur["params"][0]
    for schema in schemas:
        assert schema["description"] and "\n" not in schema["description"]


def test_declared_defaults_lie_within_their_declared_ranges():
    for spec in FILTERS.values():
        for param in spec.params:
            if param.default is None:
                assert param.nullable
            elif param.type in ("int", "float"):
                assert param.minimum <= param.default <= param.maximum, param
            elif param.type == "choice":
                assert param.default in param.choices


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("resize", {"width": 33, "height": None, "scale": None}),
        ("resize", {"width": None, "height": 7, "scale": None}),
        ("resize", {"width": None, "height": None, "scale": 1.7}),
        ("rotate", {"degrees": 90, "expand": True}),
        ("rotate", {"degrees": 90, "expand": False}),
        ("rotate", {"degrees": 33.3, "expand": True}),
        ("rotate", {"degrees": -200, "expand": True}),
        ("rotate", {"degrees": 10, "expand": False}),
    ],
)
def test_predicted_output_size_equals_the_real_one(name, params):
    image = photo(30, 50)
    spec = FILTERS[name]
    out = spec.func(image, **params)
    assert spec.output_size(50, 30, params) == (out.shape[1], out.shape[0])
