"""ICC profiles are kept (or converted to sRGB), EXIF is dropped unless asked for."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imaging.codecs import encode_image, inspect_image
from imaging.metadata import Metadata, embed, to_srgb
from imaging.pipeline import parse_pipeline, steps_to_json
from imaging.processing import Limits, process_image
from imaging.storage import Storage
from tests.imaging import bgr_to_rgb, photo
from tests.support.icc import display_p3_profile

P3 = display_p3_profile()


def tagged_upload(media: Path, fmt: str = "JPEG") -> str:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate to display
    exif[0x010F] = "TestCam"  # Make
    exif[0x0131] = "imgproc test"  # Software
    buffer = io.BytesIO()
    Image.fromarray(bgr_to_rgb(photo(40, 60))).save(buffer, fmt, icc_profile=P3,
                                                     exif=exif.tobytes())
    data = buffer.getvalue()
    info = inspect_image(data, max_bytes=len(data), max_pixels=10_000_000)
    return Storage(media).save_upload(data, info, f"tagged.{fmt.lower()}")


def run(media: Path, image_id: str, output_format: str, steps: list | None = None,
        **options) -> Image.Image:
    result = process_image(
        media_root=str(media), image_id=image_id,
        steps_json=steps_to_json(parse_pipeline({"steps": steps or [{"filter": "invert"}]})),
        job_id="job_1", index=0, output_format=output_format, quality=90,
        limits=Limits(max_pixels=10_000_000), **options,
    )
    return Image.open(io.BytesIO(Storage(media).read_key(result.output_key)))


@pytest.mark.parametrize("output_format", ["jpeg", "png", "webp"])
def test_the_icc_profile_is_kept_and_exif_dropped_by_default(tmp_path, output_format):
    image_id = tagged_upload(tmp_path)

    out = run(tmp_path, image_id, output_format)

    assert out.info.get("icc_profile") == P3
    assert not out.getexif()
    assert out.size == (40, 60)  # the orientation was applied to the pixels


@pytest.mark.parametrize("output_format", ["jpeg", "png", "webp"])
def test_keep_metadata_copies_exif_with_the_orientation_reset(tmp_path, output_format):
    image_id = tagged_upload(tmp_path)

    out = run(tmp_path, image_id, output_format, keep_metadata=True)

    exif = out.getexif()
    assert exif[0x010F] == "TestCam" and exif[0x0131] == "imgproc test"
    assert exif.get(0x0112, 1) == 1  # a viewer must not turn it a second time
    assert out.size == (40, 60)


def test_srgb_conversion_changes_wide_gamut_pixels_and_writes_no_profile(tmp_path):
    image_id = tagged_upload(tmp_path, "PNG")

    kept = np.asarray(run(tmp_path, image_id, "png"))
    converted_image = run(tmp_path, image_id, "png", colour_profile="srgb")
    converted = np.asarray(converted_image)

    assert "icc_profile" not in converted_image.info
    assert np.abs(kept.astype(int) - converted.astype(int)).max() > 5


def test_to_srgb_makes_a_p3_red_more_saturated_in_srgb_numbers():
    pixel = np.zeros((1, 1, 3), np.uint8)
    pixel[:] = (60, 80, 200)  # BGR

    b, g, r = to_srgb(pixel, P3)[0, 0]

    assert r > 200 and g < 80 and b < 60


def test_a_grey_output_never_carries_a_colour_profile(tmp_path):
    image_id = tagged_upload(tmp_path)

    out = run(tmp_path, image_id, "png", steps=[{"filter": "edges"}])

    assert out.mode in ("1", "L") and "icc_profile" not in out.info


def test_a_large_profile_is_split_across_jpeg_segments():
    big_profile = P3 + b"\x00" * 150_000  # padding past the 64 KB segment size
    encoded = encode_image(photo(16, 16), "jpeg")

    out = Image.open(io.BytesIO(embed(encoded, "jpeg", Metadata(icc_profile=big_profile))))

    assert out.info["icc_profile"] == big_profile
