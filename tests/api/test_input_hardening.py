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
