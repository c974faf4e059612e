"""/static/ (SERVE_STATIC): files of the installed apps are served; a path that climbs out of
them is a JSON 400, logged at info at most once per interval per process with the count of
those left out, and never as Django's error line with a traceback."""

from __future__ import annotations

import logging

import pytest

from common.logs import LogThrottle
from image_api import static_files

TRAVERSALS = [
    "/static/../../etc/passwd",
    "/static/..%2f..%2fetc%2fpasswd",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/rest_framework/../../../../etc/passwd",
]
BAD_PATH = {"error": "bad_path",
            "message": "The path leads outside the directory it is served from."}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """This test's own throttle of the refusal lines, on a clock the test moves."""
    fake = FakeClock()
    monkeypatch.setattr(static_files, "traversal_log",
                        LogThrottle(static_files.TRAVERSAL_LOG_INTERVAL_S, clock=fake))
    return fake


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str, int]]:
    return [(r.levelname, r.getMessage(), r.path, r.suppressed)  # type: ignore[attr-defined]
            for r in caplog.records if r.name == "image_api.static_files"]


def test_a_static_file_is_served_and_a_missing_one_is_not_found(client) -> None:
    served = client.get("/static/image_api/console/console.css")
    assert served.status_code == 200
    assert b"".join(served.streaming_content).strip()
    assert client.get("/static/image_api/console/missing.css").status_code == 404


def test_traversals_are_refused_as_json_and_logged_at_info_once_per_interval(
    client, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    caplog.set_level(logging.DEBUG)
    # Given a scanner sending 20 traversal attempts
    for path in TRAVERSALS * 5:
        response = client.get(path)
        # Then each is refused with the same JSON 400 (no server path in it)
        assert response.status_code == 400, path
        assert response.json() == BAD_PATH
    # and one info line was written, for the first: no error or warning line at all
    assert refusal_lines(caplog) == [
        ("INFO", "static.traversal_refused", "/static/../../etc/passwd", 0)]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    # When the interval has passed, the next refusal is logged with the 19 left out
    clock.now += static_files.TRAVERSAL_LOG_INTERVAL_S
    assert client.get(TRAVERSALS[1]).status_code == 400
    assert refusal_lines(caplog)[1:] == [
        ("INFO", "static.traversal_refused", "/static/../../etc/passwd", 19)]
