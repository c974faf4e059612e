"""The per-key rate limit through Django (image_api/throttle.py): the 429 and its Retry-After,
per key or per address, counted in Redis when there is one, in the process without, and served
anyway (counted, logged) while Redis is down. The live, multi-process check is
tests/integration/test_throttle_gunicorn.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from distributed.config import QueueConfig
from distributed.embedded import EmbeddedRedis
from distributed.keys import Keys
from image_api import throttle
from image_api.auth import create_key

pytestmark = pytest.mark.django_db


def keyed() -> tuple[APIClient, str]:
    """A client with a new API key of its own, and the key's id."""
    key, secret = create_key("throttled")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api, key.id


def counters() -> dict[str, float]:
    text = APIClient().get("/metrics").content.decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name in ("imgproc_throttled_total", "imgproc_throttle_unavailable_total")}


def statuses(api: APIClient, n: int, **extra: str) -> list[int]:
    return [api.get("/api/filters/", **extra).status_code for _ in range(n)]


@pytest.fixture
def fail_open_log(monkeypatch) -> throttle.FailOpenLog:
    """A fresh fail-open log (another test's warning must not hold back this test's), on a
    clock the test moves."""
    clock = {"now": 1000.0}
    log = throttle.FailOpenLog(clock=lambda: clock["now"])
    log.clock = clock  # type: ignore[attr-defined]
    monkeypatch.setattr(throttle, "FAIL_OPEN", log)
    return log


def test_over_the_limit_a_key_gets_429_throttled_with_the_wait_in_retry_after(settings):
    # Given 3/min with a burst of 2, in this process (no Redis)
    settings.DISTRIBUTED = QueueConfig()
    settings.THROTTLE_RATE, settings.THROTTLE_BURST = "3/min", 2
    api, _ = keyed()
    before = counters()
    # Then three at once get in, and the fourth is refused
    assert statuses(api, 4) == [200, 200, 200, 429]
    refused = api.get("/api/filters/")
    assert refused.status_code == 429
    body = refused.json()
    # And it is told when the next one will be: one interval (20 s) after the burst
    assert body == {"error": "throttled",
                    "message": "Request was throttled. Expected available in 20 seconds."}
    assert refused["Retry-After"] == "20"
    assert counters()["imgproc_throttled_total"] - before["imgproc_throttled_total"] == 2
    # And another key has its own limit
    other, _ = keyed()
    assert statuses(other, 1) == [200]


def test_without_a_key_each_client_address_has_its_own_limit(settings):
    settings.DISTRIBUTED = QueueConfig()
    settings.THROTTLE_RATE, settings.THROTTLE_BURST = "1/min", 0
    api = APIClient()
    assert statuses(api, 2, REMOTE_ADDR="192.0.2.7") == [200, 429]
    assert statuses(api, 2, REMOTE_ADDR="192.0.2.8") == [200, 429]


def test_no_rate_is_no_limit(settings):
    settings.DISTRIBUTED = QueueConfig()
    settings.THROTTLE_RATE, settings.THROTTLE_BURST = "", 0
    api, _ = keyed()
    assert statuses(api, 30) == [200] * 30


def test_with_redis_the_limit_lives_in_redis(settings, queue_config, redis_client):
    # Given REDIS_URL set: 2/min, a burst of 1
    settings.DISTRIBUTED = queue_config
    settings.THROTTLE_RATE, settings.THROTTLE_BURST = "2/min", 1
    api, key_id = keyed()
    assert statuses(api, 3) == [200, 200, 429]
    # Then the key's TAT is in Redis, expiring when its bucket is full again (2 x 30 s)
    key = Keys(queue_config.prefix).rate_limit(key_id)
    assert 59_000 <= redis_client.pttl(key) <= 60_000
    # And the count is Redis's, not this process's: emptying Redis lifts the limit
    redis_client.flushdb()
    assert statuses(api, 1) == [200]


def test_with_redis_down_requests_are_served_counted_and_logged_once_a_minute(
    settings, tmp_path: Path, caplog, fail_open_log
):
    # Given a limit of 1/min (burst 0) in a Redis of this test's own
    server = EmbeddedRedis(tmp_path / "redis", appendonly=False).start()
    try:
        settings.DISTRIBUTED = QueueConfig(redis_url=server.url, prefix="down")
        settings.THROTTLE_RATE, settings.THROTTLE_BURST = "1/min", 0
        api, _ = keyed()
        assert statuses(api, 2) == [200, 429]
        before = counters()
        # When Redis stops
        server.stop()
        caplog.set_level(logging.WARNING, logger="image_api.throttle")
        # Then requests are served all the same (the limit fails open) and counted
        assert statuses(api, 5) == [200] * 5
        after = counters()
        assert after["imgproc_throttle_unavailable_total"] - \
            before["imgproc_throttle_unavailable_total"] == 5
        assert after["imgproc_throttled_total"] == before["imgproc_throttled_total"]
        # And one warning says so, not one per request
        lines = [r for r in caplog.records if r.getMessage() == "throttle.unavailable"]
        assert len(lines) == 1 and lines[0].levelno == logging.WARNING
        assert lines[0].unthrottled_requests == 1 and "Redis" in lines[0].error
        # And a minute later the next line counts the requests served unthrottled meanwhile
        fail_open_log.clock["now"] += throttle.WARN_EVERY_S  # type: ignore[attr-defined]
        assert statuses(api, 1) == [200]
        lines = [r for r in caplog.records if r.getMessage() == "throttle.unavailable"]
        assert [r.unthrottled_requests for r in lines] == [1, 5]
        # When Redis is back, the limit is enforced again (its data went with it: a fresh
        # bucket of one)
        server.start()
        assert statuses(api, 2) == [200, 429]
    finally:
        server.stop()
