"""The cost model refuses expensive pipelines and oversized intermediates before any work."""

from __future__ import annotations

import pytest

from imaging.costs import Frame, check_budget, estimate, input_frame
from imaging.filters import FILTERS
from imaging.pipeline import PipelineError, parse_pipeline

MAX_PIXELS = 40_000_000
DEFAULT_COST_MS = 20_000.0


def steps(*spec: dict) -> list:
    return parse_pipeline({"steps": list(spec)})


def test_a_big_blur_on_forty_megapixels_is_refused_naming_the_step() -> None:
    pipeline = steps({"filter": "sharpen"}, {"filter": "blur", "params": {"radius": 50}})
    source = Frame(8000, 5000, 4)

    with pytest.raises(PipelineError) as caught:
        check_budget(pipeline, source, input_format="png", output_format="png",
                     max_pixels=MAX_PIXELS, max_cost_ms=DEFAULT_COST_MS)

    error = caught.value
    assert (error.code, error.step, error.filter) == ("pipeline_too_expensive", 1, "blur")
    assert error.to_dict()["error"] == "pipeline_too_expensive"
    assert error.allowed["estimated_ms"] > DEFAULT_COST_MS


def test_the_same_blur_on_a_photo_of_ordinary_size_is_accepted() -> None:
    pipeline = steps({"filter": "blur", "params": {"radius": 50}})

    cost = check_budget(pipeline, Frame(1920, 1080, 3), input_format="jpeg",
                        output_format="jpeg", max_pixels=MAX_PIXELS, max_cost_ms=DEFAULT_COST_MS)

    assert 0 < cost.total_ms < DEFAULT_COST_MS


def test_many_cheap_steps_add_up_and_the_step_that_crosses_the_budget_is_named() -> None:
    pipeline = steps(*[{"filter": "blur", "params": {"radius": 5}}] * 40)
    source = Frame(4000, 3000, 3)
    per_step = estimate(pipeline[:1], source, input_format="jpeg", output_format="jpeg").step_ms[0]

    budget = 10.5 * per_step  # room for 10 steps plus decoding and encoding, not 11
    with pytest.raises(PipelineError) as caught:
        check_budget(pipeline, source, input_format="jpeg", output_format="jpeg",
                     max_pixels=MAX_PIXELS, max_cost_ms=budget)

    assert caught.value.step in (9, 10)


def test_an_intermediate_image_over_the_pixel_cap_is_refused_before_the_work() -> None:
    pipeline = steps({"filter": "grayscale"}, {"filter": "resize", "params": {"scale": 10}},
                     {"filter": "resize", "params": {"scale": 0.1}})

    with pytest.raises(PipelineError) as caught:
        check_budget(pipeline, Frame(1000, 1000, 3), input_format="jpeg", output_format="png",
                     max_pixels=MAX_PIXELS, max_cost_ms=DEFAULT_COST_MS)

    assert (caught.value.code, caught.value.step) == ("intermediate_too_large", 1)


def test_a_rotation_that_expands_the_canvas_counts_its_larger_result() -> None:
    pipeline = steps({"filter": "rotate", "params": {"degrees": 45, "expand": True}})

    with pytest.raises(PipelineError) as caught:
        check_budget(pipeline, Frame(6000, 6000, 3), input_format="jpeg", output_format="png",
                     max_pixels=MAX_PIXELS, max_cost_ms=10 * DEFAULT_COST_MS)
    assert caught.value.code == "intermediate_too_large"


def test_the_walk_follows_sizes_and_channels() -> None:
    pipeline = steps({"filter": "edges"}, {"filter": "resize", "params": {"width": 100}},
                     {"filter": "sepia"})

    cost = estimate(pipeline, Frame(400, 200, 3), input_format="jpeg", output_format="png")

    assert [(f.width, f.height, f.channels) for f in cost.frames] == [
        (400, 200, 3), (400, 200, 1), (100, 50, 1), (100, 50, 3)]
    assert cost.peak_bytes == 400 * 200 * 3 + 400 * 200


def test_an_unknown_mode_assumes_the_most_channels_the_format_carries() -> None:
    assert input_frame(10, 10, "jpeg").channels == 3
    assert input_frame(10, 10, "png").channels == 4
    assert input_frame(10, 10, "png", "L").channels == 1
    assert input_frame(10, 10, "png", "RGB").channels == 3


def test_every_registered_filter_declares_a_cost() -> None:
    from imaging.costs import COSTS

    assert set(COSTS) == set(FILTERS)
