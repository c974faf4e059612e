"""Property-based fuzzing of every operation in the OpenAPI schema at /api/schema/.

Requests go through Django's WSGI application in this process; the distributed endpoints use
the test session's real Redis. Whatever the request, the answer is never a 5xx, and every
error is the JSON error body ``{"error": ..., "message": ...}``. Each operation gets cases
from several strategies, mixed by Hypothesis:

- schema, positive and negative: Schemathesis's requests that fit the schema and that break
  it (wrong types, missing or extra fields, ids off their pattern, odd bodies);
- existing ids: the same, with path ids of an upload, a sample, a finished local job and a
  queued distributed job (as they are, or with a suffix such as ":tasks"), so requests get
  past the lookups;
- realistic bodies (batches, uploads): pipelines drawn from the filters' declared parameters
  (in range, on the bounds, of the wrong type, absurdly large) over a small uploaded image,
  as JSON and as multipart, and uploads of real, truncated and foreign image files;
- charsets and content types: every state-changing operation with bodies declared in text
  charsets, compression codecs and names nobody knows, under every kind of media type: a
  charset that is not UTF-8/16/32 is a 415 ``unsupported_charset``, whatever the rest;
- hostile values: numbers past every bound (401 digits, 2**63, 1e308), id lookalikes (an
  existing job id + ":tasks"), raw bodies nested 2,000 levels deep or not JSON at all.

A local batch that answers 200 must not hold a ``processing_error`` result either: that code
means a filter raised on parameters that validation had accepted. Generation is derandomized
and bounded (EXAMPLES_PER_STRATEGY), so every run sends the same requests; a failure names the
operation and shows the request as a curl command, with the response.
"""

from __future__ import annotations

import bz2
import codecs
import json
import time
import zlib
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from distributed.registry import WorkerInfo
from image_api.bodies import TEXT_CHARSETS
from image_api.broker import broker
from imaging.filters import FILTERS, Param
from tests.api.conftest import as_file, encode, picture

# Every operation of the schema; test_every_schema_operation_is_fuzzed keeps this list honest.
OPERATIONS = [
    "GET /api/",
    "GET /api/callbacks/secret/",
    "GET /api/dead-letters/",
    "POST /api/dead-letters/",
    "GET /api/filters/",
    "GET /api/health/",
    "GET /api/health/live/",
    "GET /api/images/",
    "POST /api/images/",
    "GET /api/images/{image_id}/",
    "DELETE /api/images/{image_id}/",
    "GET /api/jobs/",
    "GET /api/jobs/{job_id}/",
    "DELETE /api/jobs/{job_id}/",
    "POST /api/jobs/{job_id}/cancel/",
    "GET /api/jobs/{job_id}/outputs/{index}/",
    "GET /api/jobs/{job_id}/results.zip",
    "GET /api/jobs/{job_id}/thumbnails/{index}/",
    "POST /api/process-batch/distributed/",
    "POST /api/process-batch/multiprocessing/",
    "POST /api/process-batch/threading/",
    "GET /api/usage/",
    "GET /api/workers/status/",
    "GET /api/workers/history/",
    "GET /api/workers/{worker_id}/",
    "POST /api/workers/{worker_id}/drain/",
]
# Examples per operation and strategy: 20 operations with 2 to 4 strategies each (an
# operation without parameters has a single distinct request).
EXAMPLES_PER_STRATEGY = 10
BATCHES = ("threading", "multiprocessing", "distributed")

pytestmark = [
    pytest.mark.django_db(transaction=True),  # WSGI requests run outside a test atomic
    # Hypothesis describes a strategy when a draw is rejected; Schemathesis's strategies embed
    # the whole operation, so that description is long. Harmless, and not about our code.
    pytest.mark.filterwarnings(
        "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"),
]


@pytest.fixture(scope="module")
def api_schema(django_db_setup, django_db_blocker) -> schemathesis.BaseSchema:
    # The schema view reads no table, but the WSGI handler's request signals check the
    # database connection that earlier tests may have left open.
    with django_db_blocker.unblock():
        return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture(autouse=True)
def _fuzz_settings(settings, queue_config, redis_client) -> None:
    settings.DISTRIBUTED = queue_config
    # Keeps every image a generated pipeline may make (resize, rotate) small, so each request
    # stays fast; larger outputs are refused by the pixel budget, which is part of the test.
    settings.MAX_IMAGE_PIXELS = 500_000


@pytest.fixture
def known_ids(api, png_bytes) -> dict[str, list[Any]]:
    """Path values that exist: an upload, a sample, a finished local job with an output at
    index 0, a queued distributed job, a registered worker."""
    upload = api.post("/api/images/", {"files": [as_file("a.png", png_bytes())]},
                      format="multipart").json()["images"][0]["id"]
    local = api.post("/api/process-batch/threading/",
                     {"filters": ["grayscale"], "images": [upload]}, format="json").json()["id"]
    queued = api.post("/api/process-batch/distributed/",
                      {"filters": ["invert"], "images": ["sample-badge"]}, format="json")
    broker().registry.register(WorkerInfo(
        id="w-fuzz", hostname="h", pid=1, version="0", concurrency=1, filters=(),
        started_at_ms=int(time.time() * 1000), instance="w-fuzz/1"))
    return {"image_id": [upload, "sample-badge"], "job_id": [local, queued.json()["id"]],
            "index": [0], "worker_id": ["w-fuzz"]}


# --- hostile values ---------------------------------------------------------------------------


def one_of_values(values: list[Any]) -> st.SearchStrategy[Any]:
    """Like st.sampled_from, but drawn by index: Hypothesis never has to print the (large)
    values themselves when it describes the strategy."""
    return st.integers(0, len(values) - 1).map(values.__getitem__)


HUGE_NUMBERS = [10**400, -(10**400), 2**63, -(2**63) - 1, 1e308, -1e308, 5e-324]
HOSTILE_SCALARS = one_of_values(
    [*HUGE_NUMBERS, "90", "", "\x00", "x" * 5000, "NaN", True, False, None, [], {}, [[[[]]]]]
)
HOSTILE_TEXT = one_of_values([
    "", " ", "-1", "0", "9223372036854775806", "18446744073709551616", "9" * 401, "9" * 5000,
    "1e400", "NaN", "Infinity", "1.5", "0x10", "\u0661\u0662", "..", "../x", "x" * 3000, "é",
    "%00", "a:b", "sample-", "img_",
])
# Appended to existing ids: "<job id>:tasks" is the key of the job's task list in Redis.
ID_SUFFIXES = ["", ":tasks", ".0"]
RAW_JSON = [
    b"[" * 2000 + b"]" * 2000,
    b'{"filters": ["blur"], "filter_params": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'{"a": ' * 1500 + b"1" + b"}" * 1500,
    b'{"filters": ["blur"], "filter_params": {"blur": {"radius": 1e400}}}',
    b'{"filters": ["blur"], "filter_params": {"blur": {"radius": ' + b"9" * 401 + b"}}}",
    b'{"filters": ["blur"], "filter_params": {"blur": {"radius": NaN}}}',
    b'{"filters": ["blur"], "images": ["\\ud800"]}',
    b'{"action": "requeue", "task_ids": ["job_' + b"a" * 32 + b':tasks.0"]}',
    b'{"action": "requeue", "all": true, "all": "yes"}',
    b"NaN", b"-Infinity", b"1" + b"0" * 5000, b'"\\ud800"', b"\xff\xfe\x00", b"", b"null",
]


def lookalikes(ids: list[Any]) -> st.SearchStrategy[str]:
    """Existing ids, as they are or with a suffix (the shapes that reach other Redis keys)."""
    return one_of_values([f"{value}{suffix}" for value in ids for suffix in ID_SUFFIXES])


def json_body_fields(schema: schemathesis.BaseSchema, operation: Any) -> list[str]:
    """Property names of the operation's JSON request body, or [] if it takes none."""
    content = operation.definition.raw.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref")
    if ref is None:
        return []
    component = schema.raw_schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return list(component.get("properties", {}))


def hostile(schema: schemathesis.BaseSchema, operation: Any,
            known: dict[str, list[Any]]) -> st.SearchStrategy[Case] | None:
    """Cases with hostile path, query and body values, or None if the operation takes none."""
    path_values = {param.name: st.one_of(lookalikes(known[param.name]), HOSTILE_TEXT)
                   for param in operation.path_parameters}
    query = {param.name: HOSTILE_TEXT for param in operation.query}
    fields = json_body_fields(schema, operation)
    bodies: list[st.SearchStrategy[Any]] = []
    if fields:
        values = st.one_of(HOSTILE_SCALARS, st.lists(HOSTILE_SCALARS, max_size=3))
        bodies += [one_of_values(RAW_JSON),
                   st.fixed_dictionaries({}, optional=dict.fromkeys(fields, values))]
    if not (path_values or query or bodies):
        return None
    requests = st.fixed_dictionaries({
        "path_parameters": st.fixed_dictionaries(path_values),
        "query": st.fixed_dictionaries({}, optional=query),
        "body": st.one_of(bodies) if bodies else st.none(),
    })

    def build(parts: dict[str, Any]) -> st.SearchStrategy[Case]:
        if parts["body"] is None:
            return operation.as_strategy(path_parameters=parts["path_parameters"],
                                         query=parts["query"])
        return operation.as_strategy(path_parameters=parts["path_parameters"],
                                     query=parts["query"], body=parts["body"],
                                     media_type="application/json")

    return requests.flatmap(build)


# --- realistic bodies -------------------------------------------------------------------------

WRONG_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4), st.lists(st.integers(), max_size=2), one_of_values(HUGE_NUMBERS),
)


def param_values(param: Param) -> st.SearchStrategy[Any]:
    """Values of one declared parameter: mostly valid (bounds included), sometimes wrong."""
    good: st.SearchStrategy[Any]
    if param.type == "bool":
        good = st.booleans()
    elif param.type == "choice":
        good = st.sampled_from(param.choices or ())
    elif param.type == "int":
        good = st.integers(int(param.minimum or 0), int(param.maximum or 0))
    else:
        good = st.one_of(st.floats(param.minimum, param.maximum),
                         st.integers(int(param.minimum or 0), int(param.maximum or 0)))
    if param.nullable:
        good = st.one_of(st.none(), good)
    return st.one_of(good, good, good, WRONG_VALUES)


def pipeline_step(name: str) -> st.SearchStrategy[dict[str, Any]]:
    params = {param.name: param_values(param) for param in FILTERS[name].params}
    return st.fixed_dictionaries({"filter": st.just(name),
                                  "params": st.fixed_dictionaries({}, optional=params)})


def batch_options(image_id: str, mode: str) -> st.SearchStrategy[dict[str, Any]]:
    optional: dict[str, st.SearchStrategy[Any]] = {
        "output_format": st.sampled_from(["png", "jpeg", "webp", None]),
        "quality": st.one_of(st.integers(1, 100), WRONG_VALUES),
    }
    if mode == "distributed":
        optional["priority"] = st.sampled_from(["high", "normal", "low"])
    steps = st.lists(st.sampled_from(list(FILTERS)).flatmap(pipeline_step), max_size=3)
    return st.fixed_dictionaries({"steps": steps, "images": st.just([image_id])},
                                 optional=optional)


IMAGE_FILES = one_of_values([
    encode(picture(40, 30, seed=1), ".png"),
    encode(picture(30, 40, seed=2), ".jpg"),
    encode(picture(20, 20, seed=3), ".bmp"),
    encode(picture(20, 20, seed=4), ".png")[:60],  # truncated
    b"GIF89a not really",
])


def realistic(operation: Any, known: dict[str, list[Any]]) -> st.SearchStrategy[Case] | None:
    """Cases with well-formed bodies for the batch and upload operations, else None."""
    mode = operation.path.rstrip("/").rsplit("/", 1)[-1]
    if mode in BATCHES:
        options = batch_options(known["image_id"][0], mode)
        as_json = options.flatmap(lambda body: operation.as_strategy(
            body=body, media_type="application/json"))
        as_form = st.tuples(options, st.lists(IMAGE_FILES, max_size=2)).flatmap(
            lambda args: operation.as_strategy(
                body={"options": json.dumps(args[0]), "files": args[1]},
                media_type="multipart/form-data"))
        return st.one_of(as_json, as_form)
    if operation.label == "POST /api/images/":
        return st.lists(IMAGE_FILES, min_size=1, max_size=3).flatmap(
            lambda files: operation.as_strategy(body={"files": files},
                                                media_type="multipart/form-data"))
    return None


# --- the fuzzing ------------------------------------------------------------------------------


def strategies(schema: schemathesis.BaseSchema, operation: Any,
               known: dict[str, list[Any]]) -> list[st.SearchStrategy[Case]]:
    found = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]
    names = [param.name for param in operation.path_parameters]
    if names:
        real = st.fixed_dictionaries({name: lookalikes(known[name]) for name in names})
        found.append(real.flatmap(lambda ids: operation.as_strategy(path_parameters=ids)))
    found += [strategy for strategy in (realistic(operation, known),
                                        hostile(schema, operation, known))
              if strategy is not None]
    return found


def describe(case: Case, response: Any) -> str:
    """The failing exchange: operation, status, the request as curl, the response body."""
    curl = case.as_curl_command()
    if len(curl) > 4000:
        curl = f"{curl[:4000]} ... ({len(curl)} characters in all)"
    body = response.content[:2000].decode("utf-8", errors="replace")
    return (f"{case.operation.label} answered {response.status_code} to:\n"
            f"{curl}\n--- response body ---\n{body}")


def check_response(case: Case, response: Any) -> None:
    assert response.status_code < 500, describe(case, response)
    if response.status_code >= 400:
        content_type = (response.headers.get("content-type") or [""])[0]
        assert content_type.startswith("application/json"), describe(case, response)
        body = json.loads(response.content)
        assert isinstance(body.get("error"), str) and body["error"], describe(case, response)
        assert isinstance(body.get("message"), str) and body["message"], describe(case, response)
    elif case.operation.path.endswith(("/threading/", "/multiprocessing/")):
        codes = [(r["error"] or {}).get("code") for r in json.loads(response.content)["results"]]
        assert "processing_error" not in codes, describe(case, response)


def fuzz(cases: st.SearchStrategy[Case], examples: int, record: Callable[[int], None]) -> None:
    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=cases)
    def run(case: Case) -> None:
        response = case.call()
        record(response.status_code)
        check_response(case, response)

    run()


def test_every_schema_operation_is_fuzzed(api_schema) -> None:
    labels = sorted(result.ok().label for result in api_schema.get_all_operations())

    assert labels == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_generated_request_makes_an_endpoint_answer_5xx(api_schema, label, request) -> None:
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]
    # The job list is fuzzed with jobs of both kinds to list (known_ids makes them).
    needs_ids = "{" in path or path.startswith(("/api/process-batch/", "/api/images/",
                                                "/api/jobs/"))
    known = request.getfixturevalue("known_ids") if needs_ids else {}
    cases = strategies(api_schema, operation, known)
    statuses: list[int] = []

    fuzz(st.one_of(cases), EXAMPLES_PER_STRATEGY * len(cases), statuses.append)

    assert statuses  # requests were sent, and each answer passed check_response


# --- charsets and content types ---------------------------------------------------------------

# Codec names Python knows (bytes-to-bytes, text, aliases), names it does not, and odd spellings.
CHARSETS = [
    "utf-8", "UTF8", "utf-16", "utf-16le", "utf-32-be", "us-ascii", "bz2", "bz2_codec", "zlib",
    "zip", "base64", "base_64", "hex", "rot13", "rot_13", "uu", "quopri", "punycode", "idna",
    "utf-7", "cp500", "latin-1", "koi8-r", "mbcs", "unicode_escape", "raw_unicode_escape",
    "undefined", "", " ", "x" * 300, '"bz2"', "utf-8; charset=bz2", "\u00e9",
]
MEDIA_TYPES = [
    "application/json", "multipart/form-data; boundary=b", "multipart/form-data",
    "application/x-www-form-urlencoded", "text/plain", "application/octet-stream",
    "application/problem+json", "image/png", "", "*/*", "application/json;", "json",
]
BODIES = [
    b'{"filters": ["grayscale"], "images": ["sample-shapes"]}',
    b'{"action": "requeue", "task_ids": []}',
    bz2.compress(b'{"filters": ["grayscale"], "x": "' + b"a" * 100_000 + b'"}'),
    zlib.compress(b'{"filters": ["grayscale"]}'),
    '{"filters": ["grayscale"]}'.encode("utf-16"),
    b"--b\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{}\r\n--b--\r\n",
    b"", b"\xff\xfe\x00", b"\x00" * 64,
]


def _unsafe_paths(known: dict[str, list[Any]]) -> list[tuple[str, str]]:
    """(method, path) of every state-changing operation, its path ids filled in."""
    found = []
    for label in OPERATIONS:
        method, path = label.split(" ", 1)
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            for name, values in known.items():
                path = path.replace("{" + name + "}", str(values[0]))
            found.append((method, path))
    return found


def test_no_charset_or_content_type_makes_an_endpoint_answer_5xx(known_ids, api) -> None:
    targets = _unsafe_paths(known_ids)
    answered: dict[int, int] = {}

    @settings(max_examples=300, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(target=st.sampled_from(targets), media=st.sampled_from(MEDIA_TYPES),
           charset=st.one_of(st.none(), st.sampled_from(CHARSETS)),
           body=one_of_values(BODIES))
    def run(target: tuple[str, str], media: str, charset: str | None, body: bytes) -> None:
        method, path = target
        content_type = media if charset is None else f"{media}; charset={charset}"
        response = api.generic(method, path, body, content_type=content_type)
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        where = (f"{method} {path} as {content_type!r}: {response.status_code} "
                 f"{response.content[:300]!r}")
        assert response.status_code < 500, where
        if response.status_code >= 400:
            error = json.loads(response.content)
            assert error["error"] and error["message"], where
        if charset is not None and codecs_name(charset) not in TEXT_CHARSETS:
            assert (response.status_code, json.loads(response.content)["error"]) == (
                415, "unsupported_charset"), where

    run()
    assert answered.get(415, 0) > 50 and len(answered) > 2, answered


def codecs_name(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except (LookupError, ValueError):
        return None
