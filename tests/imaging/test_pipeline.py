"""Parsing, validating and running filter pipelines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imaging import filters
from imaging.filters import FILTERS
from imaging.pipeline import (
    MAX_STEPS,
    PipelineError,
    Step,
    parse_pipeline,
    run_pipeline,
    steps_from_json,
    steps_to_json,
)
from tests.imaging import photo

ALL_FILTERS = list(FILTERS)
RESIZE_RULE = ["scale", "width and/or height"]


def steps(*items: dict) -> dict:
    return {"steps": list(items)}


# --- accepted input -----------------------------------------------------------------------


def test_seed_form_fills_in_defaults_and_applies_filter_params():
    parsed = parse_pipeline(
        {
            "filters": ["sharpen", "edges"],
            "filter_params": {"sharpen": {"intensity": 3}, "edges": {"threshold1": 50}},
        }
    )
    assert parsed == [
        Step("sharpen", {"intensity": 3.0}),
        Step("edges", {"threshold1": 50.0, "threshold2": 200.0}),
    ]
    assert isinstance(parsed[0].params["intensity"], float)


def test_steps_form_allows_the_same_filter_twice_with_different_params():
    parsed = parse_pipeline(
        steps({"filter": "blur", "params": {"radius": 1}}, {"filter": "blur"}, {"filter": "flip"})
    )
    assert [step.params for step in parsed] == [
        {"radius": 1.0},
        {"radius": 2.0},
        {"direction": "horizontal"},
    ]


@pytest.mark.parametrize("data", [{"filters": []}, {"steps": []}, {"filters": [], "x": 1}])
def test_an_empty_list_is_the_identity_pipeline(data):
    assert parse_pipeline(data) == []


def test_keys_other_than_the_pipeline_are_ignored():
    data = {"filters": ["invert"], "images": ["img_x"], "output_format": "png", "priority": 1}
    assert parse_pipeline(data) == [Step("invert", {})]


def test_params_null_means_all_defaults():
    assert parse_pipeline(steps({"filter": "contrast", "params": None})) == [
        Step("contrast", {"factor": 1.2})
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"value": 2.0}, 2),  # integral float accepted for an int parameter
        ({"value": 0}, 0),
        ({"value": 255}, 255),
    ],
)
def test_int_parameters_accept_integral_numbers(params, expected):
    (step,) = parse_pipeline(steps({"filter": "threshold", "params": params}))
    assert step.params["value"] == expected and type(step.params["value"]) is int


def test_float_parameters_accept_ints_and_resize_accepts_each_sizing():
    (step,) = parse_pipeline(
        steps({"filter": "rotate", "params": {"degrees": -45, "expand": False}})
    )
    assert step.params == {"degrees": -45.0, "expand": False}
    for params in ({"scale": 0.5}, {"width": 10}, {"height": 10}, {"width": 10, "height": 20}):
        (step,) = parse_pipeline(steps({"filter": "resize", "params": params}))
        assert step.params == {"width": None, "height": None, "scale": None, **params}


def test_exactly_fifty_steps_are_accepted():
    assert len(parse_pipeline({"filters": ["invert"] * MAX_STEPS})) == MAX_STEPS == 50


# --- the validation matrix ----------------------------------------------------------------

RANGE_0_10 = {"minimum": 0.0, "maximum": 10.0}

INVALID = [
    pytest.param(
        {"filters": ["blur", "sparkle"]},
        {"step": 1, "filter": "sparkle", "param": None, "allowed": ALL_FILTERS},
        id="unknown filter",
    ),
    pytest.param(
        steps({"filter": "blur"}, {"filter": 42}),
        {"step": 1, "filter": "42", "allowed": ALL_FILTERS},
        id="filter name not a string",
    ),
    pytest.param(
        steps({"filter": "blur", "params": {"sigma": 2}}),
        {"step": 0, "filter": "blur", "param": "sigma", "allowed": ["radius"]},
        id="unknown param",
    ),
    pytest.param(
        steps({"filter": "blur", "params": {"radius": "2"}}),
        {"step": 0, "filter": "blur", "param": "radius"},
        id="string never coerced",
    ),
    pytest.param(
        steps({"filter": "sharpen", "params": {"intensity": True}}),
        {"step": 0, "filter": "sharpen", "param": "intensity"},
        id="bool is not a number",
    ),
    pytest.param(
        steps({"filter": "threshold", "params": {"value": 2.5}}),
        {"step": 0, "filter": "threshold", "param": "value"},
        id="int rejects non-integral",
    ),
    pytest.param(
        steps({"filter": "threshold", "params": {"value": False}}),
        {"step": 0, "filter": "threshold", "param": "value"},
        id="bool is not an int",
    ),
    pytest.param(
        steps({"filter": "rotate", "params": {"expand": 1}}),
        {"step": 0, "filter": "rotate", "param": "expand", "allowed": [True, False]},
        id="number is not a bool",
    ),
    pytest.param(
        steps({"filter": "rotate", "params": {"expand": "true"}}),
        {"step": 0, "filter": "rotate", "param": "expand", "allowed": [True, False]},
        id="string is not a bool",
    ),
    pytest.param(
        steps({"filter": "brightness", "params": {"factor": -0.1}}),
        {"step": 0, "filter": "brightness", "param": "factor", "allowed": RANGE_0_10},
        id="out of range low",
    ),
    pytest.param(
        steps({"filter": "invert"}, {"filter": "contrast", "params": {"factor": 10.5}}),
        {"step": 1, "filter": "contrast", "param": "factor", "allowed": RANGE_0_10},
        id="out of range high",
    ),
    pytest.param(
        steps({"filter": "threshold", "params": {"value": 256}}),
        {"step": 0, "param": "value", "allowed": {"minimum": 0, "maximum": 255}},
        id="int out of range",
    ),
    pytest.param(
        steps({"filter": "blur", "params": {"radius": float("nan")}}),
        {"step": 0, "param": "radius"},
        id="nan",
    ),
    pytest.param(
        steps({"filter": "blur", "params": {"radius": None}}),
        {"step": 0, "param": "radius"},
        id="null for a non-nullable param",
    ),
    pytest.param(
        steps({"filter": "flip", "params": {"direction": "diagonal"}}),
        {
            "step": 0,
            "filter": "flip",
            "param": "direction",
            "allowed": ["horizontal", "vertical", "both"],
        },
        id="bad choice",
    ),
    pytest.param(
        steps({"filter": "threshold", "params": {"mode": 1}}),
        {"step": 0, "param": "mode", "allowed": ["binary", "binary_inv", "otsu"]},
        id="choice not a string",
    ),
    pytest.param(
        steps({"filter": "resize"}),
        {"step": 0, "filter": "resize", "param": "width", "allowed": RESIZE_RULE},
        id="resize with no size",
    ),
    pytest.param(
        steps({"filter": "resize", "params": {"scale": 2, "width": 100}}),
        {"step": 0, "filter": "resize", "param": "scale", "allowed": RESIZE_RULE},
        id="resize with scale and width",
    ),
    pytest.param(
        steps({"filter": "resize", "params": {"width": 0}}),
        {"step": 0, "param": "width", "allowed": {"minimum": 1, "maximum": 20000}},
        id="resize width zero",
    ),
    pytest.param(
        steps({"filter": "resize", "params": {"scale": 11}}),
        {"step": 0, "param": "scale", "allowed": {"minimum": 0.01, "maximum": 10.0}},
        id="resize scale too big",
    ),
    pytest.param(
        {"filters": ["blur"], "steps": [{"filter": "blur"}]},
        {"step": None, "allowed": ["steps", "filters"]},
        id="both forms",
    ),
    pytest.param(
        {"filter_params": {"blur": {}}, "steps": []},
        {"step": None, "allowed": ["steps", "filters"]},
        id="steps with filter_params",
    ),
    pytest.param(
        {"images": ["img_1"]},
        {"step": None, "allowed": ["steps", "filters"]},
        id="neither form",
    ),
    pytest.param(
        {"filter_params": {"blur": {"radius": 1}}},
        {"step": None, "allowed": ["steps", "filters"]},
        id="filter_params without filters",
    ),
    pytest.param(
        {"filters": ["blur"], "filter_params": {"edges": {"threshold1": 1}}},
        {"step": None, "filter": "edges", "allowed": ["blur"]},
        id="filter_params names a filter not in filters",
    ),
    pytest.param(
        {"filters": ["blur"], "filter_params": {"blur": 3}},
        {"step": 0, "filter": "blur"},
        id="params not an object",
    ),
    pytest.param(
        {"filters": ["blur"], "filter_params": ["blur"]},
        {"step": None},
        id="filter_params not an object",
    ),
    pytest.param({"filters": "blur"}, {"step": None}, id="filters not a list"),
    pytest.param({"steps": {"filter": "blur"}}, {"step": None}, id="steps not a list"),
    pytest.param(steps("blur"), {"step": 0}, id="step not an object"),
    pytest.param(
        steps({"params": {}}), {"step": 0, "allowed": ALL_FILTERS}, id="step without filter"
    ),
    pytest.param(
        steps({"filter": "blur", "parameters": {}}),
        {"step": 0, "allowed": ["filter", "params"]},
        id="unknown step key",
    ),
    pytest.param(
        {"filters": ["invert"] * (MAX_STEPS + 1)},
        {"step": None, "allowed": {"maximum": 50}},
        id="too many steps",
    ),
    pytest.param(
        steps(*[{"filter": "invert"}] * (MAX_STEPS + 1)),
        {"step": None, "allowed": {"maximum": 50}},
        id="too many steps in steps form",
    ),
]


@pytest.mark.parametrize(("data", "expected"), INVALID)
def test_invalid_pipelines_are_rejected_with_precise_details(data, expected):
    with pytest.raises(PipelineError) as caught:
        parse_pipeline(data)
    error = caught.value
    body = error.to_dict()
    assert body["error"] == "invalid_pipeline"
    assert body["message"] == str(error) and body["message"]
    for key, value in expected.items():
        assert body[key] == value, (key, body)
    assert json.loads(json.dumps(body)) == body


HUGE = int("9" * 401)
NUMBER_EDGES = [
    pytest.param("radius", HUGE, id="401-digit int for a float param"),
    pytest.param("radius", -HUGE, id="401-digit negative int for a float param"),
    pytest.param("radius", float("inf"), id="infinity"),
    pytest.param("radius", float("-inf"), id="minus infinity"),
    pytest.param("radius", float("nan"), id="nan for a float param"),
    pytest.param("radius", 1e308, id="largest floats are out of range"),
    pytest.param("radius", "2", id="numeric string for a float param"),
    pytest.param("radius", False, id="bool for a float param"),
    pytest.param("radius", [2], id="list for a float param"),
    pytest.param("value", HUGE, id="401-digit int for an int param"),
    pytest.param("value", -HUGE, id="401-digit negative int for an int param"),
    pytest.param("value", 1e300, id="integral float far out of an int range"),
    pytest.param("value", float("inf"), id="infinity for an int param"),
    pytest.param("value", "128", id="numeric string for an int param"),
    pytest.param("value", True, id="bool for an int param"),
]


@pytest.mark.parametrize(("param", "value"), NUMBER_EDGES)
def test_numbers_of_any_size_and_non_numbers_are_refused_naming_the_step_filter_and_param(
    param, value
):
    name = "blur" if param == "radius" else "threshold"
    data = steps({"filter": "invert"}, {"filter": name, "params": {param: value}})

    with pytest.raises(PipelineError) as caught:
        parse_pipeline(data)

    body = caught.value.to_dict()
    assert (body["step"], body["filter"], body["param"]) == (1, name, param)
    assert body["message"].startswith(f"{name}.{param}: ")
    assert len(body["message"]) < 200  # a 401-digit number is described, not echoed


def test_huge_integers_are_described_by_their_digit_count():
    with pytest.raises(PipelineError) as caught:
        parse_pipeline({"filters": ["blur"], "filter_params": {"blur": {"radius": HUGE}}})

    assert caught.value.message == "blur.radius: a 401-digit number is out of range [0.0, 50.0]"


@pytest.mark.parametrize(
    ("filter_name", "params", "expected"),
    [
        ("blur", {"radius": 3}, {"radius": 3.0}),  # an int for a float parameter
        ("threshold", {"value": 255.0}, {"value": 255, "mode": "binary"}),
        ("resize", {"width": 20000}, {"width": 20000, "height": None, "scale": None}),
    ],
)
def test_bounds_are_inclusive_and_ints_are_accepted_for_float_params(
    filter_name, params, expected
):
    (step,) = parse_pipeline(steps({"filter": filter_name, "params": params}))

    assert step.params == expected


def test_a_non_mapping_pipeline_is_rejected():
    with pytest.raises(PipelineError):
        parse_pipeline(["blur"])  # type: ignore[arg-type]


def test_pipeline_error_is_a_value_error_with_all_fields():
    error = PipelineError("bad", step=2, filter="blur", param="radius", allowed={"minimum": 0})
    assert isinstance(error, ValueError)
    assert error.to_dict() == {
        "error": "invalid_pipeline",
        "message": "bad",
        "step": 2,
        "filter": "blur",
        "param": "radius",
        "allowed": {"minimum": 0},
    }


# --- JSON round trip ----------------------------------------------------------------------


def test_steps_survive_a_json_round_trip_and_are_revalidated():
    parsed = parse_pipeline(
        {"filters": ["resize", "rotate", "threshold"], "filter_params": {"resize": {"width": 64}}}
    )
    data = json.loads(json.dumps(steps_to_json(parsed)))
    assert data[0] == {"filter": "resize", "params": {"width": 64, "height": None, "scale": None}}
    assert steps_from_json(data) == parsed
    data[2]["params"]["value"] = 999
    with pytest.raises(PipelineError) as caught:
        steps_from_json(data)
    assert caught.value.step == 2 and caught.value.param == "value"


def test_steps_to_json_copies_params():
    parsed = parse_pipeline({"filters": ["blur"]})
    steps_to_json(parsed)[0]["params"]["radius"] = 9
    assert parsed[0].params["radius"] == 2.0


# --- running ------------------------------------------------------------------------------


def test_run_pipeline_applies_steps_in_order_and_times_each():
    image = photo(40, 60)
    parsed = parse_pipeline(
        steps(
            {"filter": "resize", "params": {"width": 30}},
            {"filter": "rotate", "params": {"degrees": 90}},
            {"filter": "invert"},
        )
    )
    out, timings = run_pipeline(image, parsed)
    expected = filters.invert(filters.rotate(filters.resize(image, width=30), degrees=90))
    assert (out == expected).all()
    assert out.shape == (30, 20, 3)
    assert [t["filter"] for t in timings] == ["resize", "rotate", "invert"]
    assert all(isinstance(t["ms"], float) and t["ms"] >= 0 for t in timings)


def test_the_empty_pipeline_returns_the_image_unchanged():
    image = photo()
    out, timings = run_pipeline(image, [])
    assert (out == image).all() and timings == []


def test_run_pipeline_accepts_a_single_channel_third_axis():
    image = photo()[:, :, :1].copy()
    out, _ = run_pipeline(image, parse_pipeline({"filters": ["invert"]}))
    assert out.shape == image.shape[:2]
    assert (out == 255 - image[:, :, 0]).all()


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((4, 4, 3), np.float32),
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros(4, np.uint8),
    ],
)
def test_run_pipeline_rejects_arrays_that_are_not_images(image):
    with pytest.raises(ValueError, match="image"):
        run_pipeline(image, [])


def test_run_pipeline_refuses_a_step_that_would_exceed_max_pixels_before_running_it():
    image = photo(100, 100)
    parsed = parse_pipeline(
        steps({"filter": "invert"}, {"filter": "resize", "params": {"scale": 3}})
    )
    with pytest.raises(PipelineError) as caught:
        run_pipeline(image, parsed, max_pixels=50_000)
    assert caught.value.step == 1 and caught.value.filter == "resize"
    assert caught.value.allowed == {"max_pixels": 50_000}
    out, _ = run_pipeline(image, parsed, max_pixels=90_000)
    assert out.shape == (300, 300, 3)


def test_run_pipeline_rejects_an_unknown_filter_in_a_hand_made_step():
    with pytest.raises(PipelineError) as caught:
        run_pipeline(photo(), [Step("invert", {}), Step("sparkle", {})])
    assert caught.value.step == 1 and caught.value.allowed == ALL_FILTERS
