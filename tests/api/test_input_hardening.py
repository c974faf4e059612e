"""Bad input gets a clear 4xx JSON error and changes nothing: numbers of any size, JSON nested
too deep, unknown keys, strings where numbers belong, pagination out of range and ids in URLs
that cannot be ids. Every mode, with the real Redis of the test session."""

from __future__ import annotations

import json
from typing import Any

import pytest

from image_api.models import Job
from image_api.parsers import MAX_JSON_DEPTH
from tests.api.conftest import as_file
from tests.support.redis import assert_counts_add_up

pytestmark = pytest.mark.django_db

MODES = ["threading", "multiprocessing", "distributed"]
HUGE = int("9" * 401)
BLUR_HUGE = {"filters": ["blur"], "filter_params": {"blur": {"radius": HUGE}}}
ONE_SAMPLE = {"filters": ["grayscale"], "images": ["sample-badge"]}


@pytest.fixture(autouse=True)
def _distributed_settings(settings, queue_config, redis_client) -> None:
    settings.DISTRIBUTED = queue_config


@pytest.fixture
def nothing_happened(stored_files, redis_client, queue_config):
    """No job recorded, no file stored, no task accepted."""

    def check() -> None:
        assert Job.objects.count() == 0
        assert stored_files() == []
        assert assert_counts_add_up(redis_client, queue_config).get("accepted", 0) == 0

    return check


@pytest.fixture
def redis_commands(redis_client):
    """Counts the commands the Redis server runs during a block (the counting itself is
    subtracted by measuring an empty block the same way)."""

    def measure(action) -> int:
        redis_client.config_resetstat()
        action()
        return int(redis_client.info("stats")["total_commands_processed"])

    baseline = measure(lambda: None)
    return lambda action: measure(action) - baseline


def post_json(api, path: str, body: Any):
    return api.post(path, json.dumps(body), content_type="application/json")


def post_raw(api, path: str, text: str):
    return api.post(path, text, content_type="application/json")


def post_multipart(api, path: str, options: str, png: bytes, **fields: str):
    return api.post(path, {"files": [as_file("a.png", png)], "options": options, **fields},
                    format="multipart")


def error_body(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body


def batch_url(mode: str) -> str:
    return f"/api/process-batch/{mode}/"


def nested(depth: int) -> str:
    """JSON text of arrays nested ``depth`` levels deep (json.dumps would recurse)."""
    return "[" * depth + "1" + "]" * depth


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_401_digit_filter_parameter_is_a_400_naming_step_filter_and_param(
    api, mode, nothing_happened
) -> None:
    response = post_json(api, batch_url(mode), BLUR_HUGE)

    body = error_body(response, 400, "invalid_pipeline")
    assert (body["step"], body["filter"], body["param"]) == (0, "blur", "radius")
    assert "401-digit" in body["message"] and len(body["message"]) < 200
    nothing_happened()


@pytest.mark.parametrize("mode", MODES)
def test_a_401_digit_parameter_in_multipart_options_stores_nothing(
    api, mode, png_bytes, nothing_happened
) -> None:
    response = post_multipart(api, batch_url(mode), json.dumps(BLUR_HUGE), png_bytes())

    body = error_body(response, 400, "invalid_pipeline")
    assert (body["step"], body["filter"], body["param"]) == (0, "blur", "radius")
    nothing_happened()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"threshold": {"value": HUGE}}, "value"),  # int parameter
        ({"threshold": {"value": -HUGE}}, "value"),
        ({"threshold": {"value": 1e300}}, "value"),  # integral float, far out of range
        ({"threshold": {"value": "128"}}, "value"),  # a numeric string is not a number
        ({"threshold": {"value": True}}, "value"),  # nor is a bool
        ({"blur": {"radius": "2"}}, "radius"),
        ({"blur": {"radius": False}}, "radius"),
        ({"blur": {"radius": 1.7976931348623157e308}}, "radius"),
    ],
)
def test_filter_parameters_take_json_numbers_in_range_only(
    api, mode, params, param, nothing_happened
) -> None:
    response = post_json(api, batch_url(mode), {"filters": list(params), "filter_params": params})

    body = error_body(response, 400, "invalid_pipeline")
    assert (body["filter"], body["param"]) == (next(iter(params)), param)
    nothing_happened()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
def test_non_finite_numbers_in_a_json_body_are_a_parse_error(
    api, mode, number, nothing_happened
) -> None:
    text = '{"filters": ["blur"], "filter_params": {"blur": {"radius": ' + number + "}}}"

    response = post_raw(api, batch_url(mode), text)

    assert "JSON parse error" in error_body(response, 400, "parse_error")["message"]
    nothing_happened()


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e400"])
def test_non_finite_numbers_in_multipart_options_are_invalid_options(
    api, number, png_bytes, nothing_happened
) -> None:
    options = '{"filters": ["blur"], "filter_params": {"blur": {"radius": ' + number + "}}}"

    response = post_multipart(api, batch_url("threading"), options, png_bytes())

    error_body(response, 400, "invalid_options")
    nothing_happened()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("quality", ["90", True, 90.5, HUGE, -HUGE, [90], {"q": 90}])
def test_quality_must_be_a_json_integer_from_1_to_100(
    api, mode, quality, nothing_happened
) -> None:
    response = post_json(api, batch_url(mode), {**ONE_SAMPLE, "quality": quality})

    body = error_body(response, 400, "invalid_request")
    assert list(body["fields"]) == ["quality"]
    nothing_happened()


def test_an_integral_float_quality_is_the_same_json_number(api) -> None:
    response = post_json(api, batch_url("threading"), {**ONE_SAMPLE, "quality": 80.0})

    assert response.status_code == 200, response.content
    assert response.json()["quality"] == 80


@pytest.mark.parametrize("images", [[1], ["sample-badge", None], "sample-badge"])
def test_image_ids_must_be_a_list_of_strings(api, images, nothing_happened) -> None:
    response = post_json(api, batch_url("distributed"), {"filters": [], "images": images})

    assert list(error_body(response, 400, "invalid_request")["fields"]) == ["images"]
    nothing_happened()


# --- JSON nesting ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("depth", [2000, MAX_JSON_DEPTH])  # + 1 for the outer object
def test_a_json_body_nested_too_deep_is_a_400(api, mode, depth, nothing_happened) -> None:
    text = '{"filters": ["blur"], "filter_params": ' + nested(depth) + "}"

    response = post_raw(api, batch_url(mode), text)

    assert str(MAX_JSON_DEPTH) in error_body(response, 400, "json_too_deep")["message"]
    nothing_happened()


def test_a_bare_array_nested_2000_levels_deep_is_a_400(api, nothing_happened) -> None:
    response = post_raw(api, batch_url("threading"), nested(2000))

    error_body(response, 400, "json_too_deep")
    nothing_happened()


def test_json_nested_exactly_to_the_limit_reaches_validation(api, nothing_happened) -> None:
    # The object is level 1, {"blur": ...} level 2, then the arrays: MAX_JSON_DEPTH in all.
    text = '{"filters": ["blur"], "filter_params": {"blur": ' + nested(MAX_JSON_DEPTH - 2) + "}}"

    response = post_raw(api, batch_url("threading"), text)

    error_body(response, 400, "invalid_pipeline")
    nothing_happened()


@pytest.mark.parametrize("mode", MODES)
def test_multipart_options_nested_2000_levels_deep_are_a_400(
    api, mode, png_bytes, nothing_happened
) -> None:
    options = '{"filters": ["blur"], "filter_params": ' + nested(2000) + "}"

    response = post_multipart(api, batch_url(mode), options, png_bytes())

    error_body(response, 400, "json_too_deep")
    nothing_happened()


def test_a_dead_letter_action_nested_2000_levels_deep_is_a_400(api) -> None:
    text = '{"action": "requeue", "task_ids": ' + nested(2000) + "}"

    response = post_raw(api, "/api/dead-letters/", text)

    error_body(response, 400, "json_too_deep")


# --- unknown keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_misspelt_top_level_key_is_a_400_naming_it(api, mode, nothing_happened) -> None:
    response = post_json(api, batch_url(mode), {"filtres": ["blur"], "qualty": 80})

    body = error_body(response, 400, "unknown_fields")
    assert body["fields"] == ["filtres", "qualty"]
    assert "'filtres'" in body["message"] and "'qualty'" in body["message"]
    assert "filters" in body["message"].split("accepted fields:")[1]
    nothing_happened()


def test_an_unknown_key_is_refused_even_beside_a_valid_pipeline(api, nothing_happened) -> None:
    response = post_json(api, batch_url("distributed"), {**ONE_SAMPLE, "priorty": "high"})

    assert error_body(response, 400, "unknown_fields")["fields"] == ["priorty"]
    nothing_happened()


@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_key_in_multipart_options_is_a_400(
    api, mode, png_bytes, nothing_happened
) -> None:
    options = json.dumps({"filters": ["grayscale"], "output_fromat": "png"})

    response = post_multipart(api, batch_url(mode), options, png_bytes())

    assert error_body(response, 400, "unknown_fields")["fields"] == ["output_fromat"]
    nothing_happened()


@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_multipart_form_field_is_a_400(api, mode, png_bytes, nothing_happened) -> None:
    options = json.dumps({"filters": ["grayscale"]})

    response = post_multipart(api, batch_url(mode), options, png_bytes(), priority="high")

    assert error_body(response, 400, "unknown_fields")["fields"] == ["priority"]
    nothing_happened()


@pytest.mark.parametrize("mode", MODES)
def test_a_file_field_sent_as_text_is_a_400(api, mode, nothing_happened) -> None:
    response = api.post(batch_url(mode), {"options": json.dumps(ONE_SAMPLE), "files": "a.png"},
                        format="multipart")

    assert error_body(response, 400, "not_a_file")["fields"] == ["files"]
    nothing_happened()


def test_the_schema_documents_closed_objects_and_id_patterns(api) -> None:
    schema = api.get("/api/schema/?format=json").json()
    components, paths = schema["components"]["schemas"], schema["paths"]

    for name in ("BatchOptions", "DistributedBatchOptions", "DeadLetterAction"):
        assert components[name]["additionalProperties"] is False, name
        assert "unknown_fields" not in components[name].get("description", ""), name
    [job_id] = paths["/api/jobs/{job_id}/"]["get"]["parameters"]
    assert job_id["schema"]["pattern"] == "^job_[0-9a-f]{32}$"
    [image_id] = paths["/api/images/{image_id}/"]["get"]["parameters"]
    assert image_id["schema"]["pattern"].startswith("^(img_[0-9a-f]{32}|sample-")
    upload = components["ImageUpload"]["properties"]["files"]["items"]
    assert upload == {"type": "string", "format": "binary"}


# --- dead letters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "offset=9223372036854775806",
        f"offset={2**32 + 1}",
        "offset=-1",
        "offset=" + "9" * 401,
        "offset=ten",
        "limit=0",
        "limit=501",
        "limit=-5",
        "limit=1.5",
    ],
)
def test_dead_letter_pagination_out_of_range_is_a_400(api, query, redis_commands) -> None:
    commands = redis_commands(lambda: error_body(
        api.get(f"/api/dead-letters/?{query}"), 400, "invalid_pagination"))

    assert commands == 0


def test_dead_letter_pagination_bounds_are_accepted(api) -> None:
    response = api.get(f"/api/dead-letters/?offset={2**32}&limit=500")

    assert response.status_code == 200, response.content
    assert response.json() == {"total": 0, "offset": 2**32, "limit": 500, "truncated": False,
                               "items": []}


@pytest.mark.parametrize(
    "body",
    [
        {"action": "requeue", "all": "true"},
        {"action": "requeue", "all": 1},
        {"action": "requeue", "task_ids": [1]},
        {"action": "requeue", "task_ids": ["x"]},
        {"action": "requeue", "task_ids": [f"job_{'a' * 32}:tasks.0"]},
        {"action": "requeue", "task_ids": [f"job_{'a' * 32}"]},
    ],
)
def test_dead_letter_actions_take_json_booleans_and_task_ids_only(api, body) -> None:
    response = post_json(api, "/api/dead-letters/", body)

    assert set(error_body(response, 400, "invalid_request")["fields"]) <= {"all", "task_ids"}


def test_an_unknown_key_in_a_dead_letter_action_is_a_400(api) -> None:
    response = post_json(api, "/api/dead-letters/", {"action": "discard", "all": True, "x": 1})

    assert error_body(response, 400, "unknown_fields")["fields"] == ["x"]


def test_dead_letter_actions_are_json_only(api) -> None:
    response = api.post("/api/dead-letters/", {"action": "discard", "all": "true"})

    error_body(response, 415, "unsupported_media_type")


# --- ids in URLs ----------------------------------------------------------------------------


@pytest.fixture
def queued_job(api) -> str:
    response = post_json(api, batch_url("distributed"), ONE_SAMPLE)
    assert response.status_code == 202, response.content
    return response.json()["id"]


@pytest.mark.parametrize("suffix", [":tasks", ".0", "x", ":tasks:x"])
def test_a_real_job_id_with_a_suffix_is_job_not_found(
    api, queued_job, suffix, redis_commands
) -> None:
    job_id = queued_job + suffix
    responses = []

    commands = redis_commands(lambda: responses.extend([
        api.get(f"/api/jobs/{job_id}/"),
        api.post(f"/api/jobs/{job_id}/cancel/"),
        api.get(f"/api/jobs/{job_id}/outputs/0/"),
        api.get(f"/api/jobs/{job_id}/results.zip"),
    ]))

    for response in responses:
        assert error_body(response, 404, "job_not_found")["job"] == job_id
    assert commands == 0
    assert api.get(f"/api/jobs/{queued_job}/").json()["status"] == "queued"  # untouched


@pytest.mark.parametrize("job_id", ["job_1", "JOB_" + "A" * 32, "job_" + "g" * 32, "x" * 300])
def test_malformed_job_ids_are_404_without_a_database_or_redis_lookup(
    api, job_id, redis_commands, django_assert_num_queries
) -> None:
    with django_assert_num_queries(0):
        commands = redis_commands(lambda: error_body(
            api.get(f"/api/jobs/{job_id}/"), 404, "job_not_found"))

    assert commands == 0


@pytest.mark.parametrize(
    "image_id", ["img_1", "img_" + "F" * 32, "sample-", "sample-Badge", "sample-" + "a" * 65]
)
def test_malformed_image_ids_are_404_without_touching_storage(api, image_id, media_root) -> None:
    response = api.get(f"/api/images/{image_id}/")

    assert error_body(response, 404, "image_not_found")["image"] == image_id
    assert list(media_root.iterdir()) == []  # not even the samples were generated
