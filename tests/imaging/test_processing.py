"""process_image end to end: storage in, pipeline, encoded result out."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from imaging import filters
from imaging.codecs import (
    Header,
    ImageError,
    ImageInfo,
    decode_image,
    encode_image,
    inspect_image,
    sniff_format,
)
from imaging.pipeline import (
    PipelineError,
    needs_only_luma,
    parse_pipeline,
    run_pipeline,
    steps_to_json,
)
from imaging.processing import (
    Limits,
    ProcessResult,
    limit_native_threads,
    process_image,
    shrink_on_load,
)
from imaging.storage import InsufficientStorage, Storage
from tests.imaging import photo, with_alpha
from tests.support.hostile import jpeg_scan_bomb

MAX_PIXELS = 10_000_000


@pytest.fixture
def media(tmp_path: Path) -> Path:
    return tmp_path / "media"


def store(media: Path, image: np.ndarray, fmt: str = "png") -> str:
    data = encode_image(image, fmt, quality=95)
    info = inspect_image(data, max_bytes=10_000_000, max_pixels=MAX_PIXELS)
    return Storage(media).save_upload(data, info, f"in.{fmt}")


def run(media: Path, image_id: str, pipeline: dict, **overrides) -> ProcessResult:
    arguments = {
        "media_root": str(media),
        "image_id": image_id,
        "steps_json": steps_to_json(parse_pipeline(pipeline)),
        "job_id": "job_1",
        "index": 3,
        "output_format": None,
        "quality": 90,
        "limits": overrides.pop("limits", None)
        or Limits(max_pixels=overrides.pop("max_pixels", MAX_PIXELS)),
        **overrides,
    }
    return process_image(**arguments)


def test_processing_writes_a_decodable_output_with_the_right_size(media: Path):
    image = photo(60, 80)
    image_id = store(media, image)
    pipeline = {"filters": ["resize", "grayscale"], "filter_params": {"resize": {"width": 40}}}
    result = run(media, image_id, pipeline)
    assert result.output_key == f"outputs/job_1/0003-{image_id}.png"
    assert (result.format, result.width, result.height) == ("png", 40, 30)
    data = Storage(media).read_key(result.output_key)
    assert result.bytes == len(data)
    decoded = decode_image(data, max_pixels=MAX_PIXELS)
    # Grey planning resizes the grey level instead of the colour image: rounding apart, equal.
    expected = filters.grayscale(filters.resize(image, width=40))
    assert np.abs(decoded.astype(int) - expected.astype(int)).max() <= 1
    assert [t["filter"] for t in result.timings] == ["resize", "grayscale"]
    assert result.total_ms >= sum(t["ms"] for t in result.timings)


def test_the_output_key_is_derived_by_the_storage_never_given(media: Path):
    result = run(media, "sample-shapes", {"steps": [{"filter": "edges"}]},
                 output_format="webp", quality=80, index=7)
    assert result.output_key == "outputs/job_1/0007-sample-shapes.webp"
    assert result.format == "webp"
    data = (media / result.output_key).read_bytes()
    assert sniff_format(data) == "webp"
    assert decode_image(data, max_pixels=MAX_PIXELS).shape == (600, 800, 3)
    with pytest.raises(TypeError):
        run(media, "sample-shapes", {"filters": []}, output_key="uploads/elsewhere.png")


def test_a_jpeg_input_gives_a_jpeg_output_and_alpha_survives_png(media: Path):
    jpeg_id = store(media, photo(), "jpeg")
    assert run(media, jpeg_id, {"filters": []}).format == "jpeg"
    rgba = with_alpha(photo())
    png_id = store(media, rgba, "png")
    result = run(media, png_id, {"filters": ["flip"]})
    decoded = decode_image(Storage(media).read_key(result.output_key), max_pixels=MAX_PIXELS)
    assert (decoded == cv2.flip(rgba, 1)).all()


def test_the_result_is_plain_json(media: Path):
    result = run(media, store(media, photo()), {"filters": ["blur"]})
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_an_unknown_image_is_a_permanent_not_found_error(media: Path):
    with pytest.raises(ImageError) as caught:
        run(media, "img_" + "0" * 32, {"filters": ["blur"]})
    assert (caught.value.status, caught.value.code) == (404, "image_not_found")
    with pytest.raises(ImageError):
        run(media, "../../etc/passwd", {"filters": ["blur"]})


def test_invalid_steps_fail_before_reading_the_image(media: Path):
    with pytest.raises(PipelineError) as caught:
        process_image(
            media_root=str(media),
            image_id="img_" + "0" * 32,  # does not exist: the steps are checked first
            steps_json=[{"filter": "blur", "params": {"radius": 99}}],
            job_id="job_1",
            index=0,
            output_format=None,
            quality=90,
            limits=Limits(max_pixels=MAX_PIXELS),
        )
    assert caught.value.param == "radius"


def test_a_pipeline_that_would_exceed_max_pixels_is_refused(media: Path):
    image_id = store(media, photo(100, 100))
    with pytest.raises(PipelineError):
        run(
            media,
            image_id,
            {"steps": [{"filter": "resize", "params": {"scale": 10}}]},
            max_pixels=200_000,
        )
    assert not (media / "outputs").exists()


def test_an_upload_over_max_pixels_is_refused(media: Path):
    image_id = store(media, photo(100, 100))
    with pytest.raises(ImageError) as caught:
        run(media, image_id, {"filters": []}, max_pixels=5_000)
    assert caught.value.code == "too_many_pixels"


def test_corrupt_stored_bytes_are_a_permanent_image_error(media: Path):
    image_id = store(media, photo(64, 64))
    path = Storage(media).image_path(image_id)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageError) as caught:
        run(media, image_id, {"filters": []})
    assert caught.value.code == "corrupt_image"


def test_an_unwritable_output_format_is_refused(media: Path):
    with pytest.raises(ImageError) as caught:
        run(media, store(media, photo()), {"filters": []}, output_format="tiff")
    assert caught.value.code == "unsupported_output_format"


def test_process_image_runs_in_a_spawned_process_pool(media: Path):
    image_id = store(media, photo(40, 40))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pool.submit(limit_native_threads, 1).result()
        future = pool.submit(
            process_image,
            media_root=str(media),
            image_id=image_id,
            steps_json=steps_to_json(parse_pipeline({"filters": ["rotate"]})),
            job_id="job_2",
            index=0,
            output_format="jpeg",
            quality=90,
            limits=Limits(max_pixels=MAX_PIXELS),
        )
        result = future.result(timeout=60)
    assert isinstance(result, ProcessResult)
    assert result.output_key == f"outputs/job_2/0000-{image_id}.jpg"
    assert (media / result.output_key).is_file()


def test_limit_native_threads_sets_opencvs_thread_count():
    before = cv2.getNumThreads()
    try:
        limit_native_threads(1)
        assert cv2.getNumThreads() == 1
        limit_native_threads(2)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)


def test_a_pipeline_over_the_cost_budget_is_refused_before_decoding(media: Path):
    image_id = store(media, photo(400, 400))
    path = Storage(media).image_path(image_id)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 8
    data[start : start + 64] = b"\xff" * 64  # damaged pixel data: decoding says corrupt_image
    path.write_bytes(bytes(data))
    with pytest.raises(PipelineError) as caught:
        run(media, image_id, {"steps": [{"filter": "blur", "params": {"radius": 50}}]},
            limits=Limits(max_pixels=MAX_PIXELS, max_cost_ms=10))
    assert (caught.value.code, caught.value.step) == ("pipeline_too_expensive", 0)
    assert not (media / "outputs").exists()


def test_a_scan_bomb_in_storage_is_refused_before_decoding(media: Path):
    bomb = jpeg_scan_bomb(2000, 2000, 1000)
    image_id = Storage(media).save_upload(bomb, ImageInfo("jpeg", 2000, 2000, "RGB"), "b.jpg")
    with pytest.raises(ImageError) as caught:
        run(media, image_id, {"filters": ["sharpen"]})
    assert caught.value.code == "too_many_scans"


@pytest.mark.parametrize("first", [{"width": 100}, {"scale": 0.125}, {"height": 75}])
def test_a_pipeline_starting_with_a_shrinking_resize_decodes_a_jpeg_at_reduced_scale(
    media: Path, first: dict
):
    image = photo(600, 800)
    image_id = store(media, image, "jpeg")
    steps = [{"filter": "resize", "params": first}, {"filter": "grayscale"}]

    result = run(media, image_id, {"steps": steps}, output_format="png")

    assert (result.width, result.height) == (100, 75)
    full = filters.grayscale(filters.resize(decode_image(
        (Storage(media).image_path(image_id)).read_bytes(), max_pixels=MAX_PIXELS), width=100))
    out = decode_image(Storage(media).read_key(result.output_key), max_pixels=MAX_PIXELS)
    assert np.abs(out.astype(int) - full.astype(int)).mean() < 2


def test_shrink_on_load_makes_a_scaled_resize_absolute():
    header = Header("jpeg", 800, 600, "RGB", 1, 1, 1)
    steps = parse_pipeline({"steps": [{"filter": "resize", "params": {"scale": 0.25}},
                                      {"filter": "invert"}]})

    rewritten, reduce_to = shrink_on_load(steps, header)

    assert reduce_to == (200, 150)
    assert rewritten[0].params == {"width": 200, "height": 150, "scale": None}
    assert rewritten[1] == steps[1]
    grow = parse_pipeline({"steps": [{"filter": "resize", "params": {"scale": 2}}]})
    assert shrink_on_load(grow, header) == (grow, None)


@pytest.mark.parametrize(("steps", "expected"), [
    (["edges"], True),
    (["flip", "rotate", "grayscale"], True),  # rotate by 90: pixels move, none is computed
    (["threshold", "sepia"], True),  # colour after the grey result is made from grey anyway
    (["sharpen", "edges"], False),  # computed values round differently on grey
    (["blur", "edges"], False),
    (["sepia", "edges"], False),
    (["sharpen"], False),  # the result is colour
    ([], False),
])
def test_grey_planning_applies_only_when_the_result_is_grey_before_colour_is_needed(
    steps, expected
):
    assert needs_only_luma(parse_pipeline({"filters": steps})) is expected
    turned = parse_pipeline({"steps": [{"filter": "rotate", "params": {"degrees": 45}},
                                       {"filter": "edges"}]})
    assert not needs_only_luma(turned)


def test_grey_planning_gives_the_edges_of_the_colour_path(media: Path):
    # Decoding a JPEG's Y channel instead of converting its colour: the grey levels differ
    # by rounding (a few levels at a few pixels, where chroma upsampling clipped), so the
    # edge maps agree on almost every edge pixel.
    pipeline = {"steps": [{"filter": "flip"},
                          {"filter": "edges", "params": {"threshold1": 50, "threshold2": 150}}]}
    for image_id in Storage(media).sample_ids():
        data = Storage(media).image_path(image_id).read_bytes()
        colour_path, _ = run_pipeline(decode_image(data, max_pixels=MAX_PIXELS),
                                      parse_pipeline(pipeline))
        result = run(media, image_id, pipeline, output_format="png")
        planned = decode_image(Storage(media).read_key(result.output_key),
                               max_pixels=MAX_PIXELS)
        if colour_path.ndim == 3:  # the badge has alpha: no planning, same layout as before
            assert (planned == colour_path).all()
            continue
        both = ((planned > 0) & (colour_path > 0)).sum()
        either = ((planned > 0) | (colour_path > 0)).sum()
        assert both / either >= 0.97, (image_id, both / either)


def test_the_result_says_what_its_output_and_preview_stored_and_marks_the_tenant(media: Path):
    image_id = store(media, photo(60, 80))
    result = run(media, image_id, {"filters": ["grayscale"]}, tenant="t1")
    directory = media / "outputs" / "job_1"
    files = [p for p in directory.iterdir() if p.name != ".tenant"]
    assert len(files) == 2  # the output and its thumbnail
    assert result.stored_bytes == sum(p.stat().st_size for p in files) > result.bytes
    assert Storage(media).outputs_tenant("job_1") == "t1"
    # The same task run again (a redelivery) rewrites the same keys: it adds nothing.
    assert run(media, image_id, {"filters": ["grayscale"]}, tenant="t1").stored_bytes == 0


def test_below_the_free_space_floor_nothing_is_written(media: Path):
    image_id = store(media, photo(60, 80))
    free = Storage(media).free_bytes()
    with pytest.raises(InsufficientStorage):
        run(media, image_id, {"filters": ["grayscale"]}, tenant="t1",
            min_free_bytes=free + 1024**3)
    assert not (media / "outputs").exists()
