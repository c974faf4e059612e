"""Every request gets an id: the caller's X-Request-ID if short and safe, else a fresh one."""

from __future__ import annotations

import re

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from common.logs import current_request_id
from image_api.middleware import RequestIdMiddleware

pytestmark = pytest.mark.django_db

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_a_safe_incoming_request_id_comes_back_in_the_response(api) -> None:
    response = api.get("/api/health/", HTTP_X_REQUEST_ID="client-42.retry_1")
    assert response["X-Request-ID"] == "client-42.retry_1"


@pytest.mark.parametrize(
    "incoming",
    ["", "has space", 'quote"d', "k=v", "line\nbreak", "x" * 65, "ünicode"],
)
def test_an_unsafe_or_too_long_request_id_is_replaced_by_a_fresh_one(api, incoming) -> None:
    response = api.get("/api/health/", HTTP_X_REQUEST_ID=incoming)
    assert GENERATED.fullmatch(response["X-Request-ID"])


def test_each_request_without_an_id_gets_its_own(api) -> None:
    first = api.get("/api/health/")["X-Request-ID"]
    second = api.get("/api/no-such-endpoint/")["X-Request-ID"]
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second) and first != second


def test_services_read_the_current_request_id_while_the_request_runs() -> None:
    seen: list[str | None] = []

    def view(request: HttpRequest) -> HttpResponse:
        seen.append(current_request_id())
        return HttpResponse("ok")

    middleware = RequestIdMiddleware(view)
    response = middleware(RequestFactory().get("/api/health/", HTTP_X_REQUEST_ID="abc-1"))
    assert seen == ["abc-1"]
    assert response["X-Request-ID"] == "abc-1"
    assert current_request_id() is None  # nothing leaks into the next request on this thread
