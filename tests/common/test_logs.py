"""common/logs.py: one structured line per event, JSON or logfmt, with the context's ids.

Records go through a real logger and a handler built from ``logging_config``'s formatter and
filter (the ones the API, gunicorn and the workers use), writing to a StringIO; the process's
own logging configuration is left alone."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from common.logs import LogThrottle, current_request_id, log_context, logging_config


@pytest.fixture
def emit() -> Iterator[Callable[[str], tuple[logging.Logger, io.StringIO]]]:
    """A private logger whose one handler is configured like the service's."""
    created: list[tuple[logging.Logger, logging.Handler]] = []

    def make(output: str) -> tuple[logging.Logger, io.StringIO]:
        config = logging_config("DEBUG", output)
        formatter = config["formatters"]["structured"]
        context = config["filters"]["context"]
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter["()"](output=formatter["output"]))
        handler.addFilter(context["()"]())
        logger = logging.getLogger(f"test.logs.{output}.{len(created)}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(handler)
        created.append((logger, handler))
        return logger, stream

    yield make
    for logger, handler in created:
        logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_json_line_has_ts_level_logger_event_then_the_ids_then_extra_fields(emit) -> None:
    logger, stream = emit("json")
    with log_context(request_id="req-1", job_id="job_1"):
        logger.info("task.done", extra={"worker": "w1", "duration_ms": 5.5, "ok": True})
    [line] = lines(stream)
    record: dict[str, Any] = json.loads(line)
    assert list(record) == ["ts", "level", "logger", "event", "request_id", "job_id", "worker",
                            "duration_ms", "ok"]
    assert record["ts"].endswith("Z") and "T" in record["ts"]
    assert (record["level"], record["event"]) == ("info", "task.done")
    assert record["logger"] == logger.name
    assert (record["request_id"], record["job_id"], record["worker"]) == ("req-1", "job_1", "w1")
    assert (record["duration_ms"], record["ok"]) == (5.5, True)


def test_logfmt_writes_the_same_fields_as_key_value_pairs(emit) -> None:
    logger, stream = emit("logfmt")
    with log_context(task_id="job_1.3"):
        logger.warning("task.retry", extra={"error": 'bad "input" = x', "attempt": 2})
    [line] = lines(stream)
    assert line.split(" ", 1)[0].startswith("ts=")
    assert f" level=warning logger={logger.name} event=task.retry task_id=job_1.3 " in line
    assert line.endswith(' error="bad \\"input\\" = x" attempt=2')


def test_an_exception_stays_on_one_line_in_both_formats(emit) -> None:
    for output in ("json", "logfmt"):
        logger, stream = emit(output)
        try:
            raise ValueError("first\nsecond")
        except ValueError:
            logger.exception("task.crashed")
        [line] = lines(stream)
        assert "Traceback" in line and "ValueError" in line, output


def test_the_ids_of_a_context_are_gone_after_it_and_nest_inside_it(emit) -> None:
    logger, stream = emit("json")
    assert current_request_id() is None
    with log_context(request_id="outer"):
        assert current_request_id() == "outer"
        with log_context(request_id="inner", job_id="j"):
            logger.info("inside")
        logger.info("after inner")
    logger.info("outside")
    inside, after_inner, outside = (json.loads(line) for line in lines(stream))
    assert (inside["request_id"], inside["job_id"]) == ("inner", "j")
    assert after_inner["request_id"] == "outer" and "job_id" not in after_inner
    assert "request_id" not in outside and current_request_id() is None


def test_an_unknown_context_field_is_refused() -> None:
    with pytest.raises(TypeError, match="unknown log context field user"), log_context(user="x"):
        pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_throttled_line_is_let_through_once_per_interval_with_the_count_left_out() -> None:
    clock = FakeClock()
    throttle = LogThrottle(60.0, clock=clock)
    # The first line goes out at once, the next ones of the interval are left out
    assert [throttle.allow() for _ in range(4)] == [0, None, None, None]
    clock.now += 59.9
    assert throttle.allow() is None
    # Then the first line of the next interval says how many were left out
    clock.now += 0.1
    assert throttle.allow() == 4
    assert throttle.allow() is None
    # and after a quiet spell, the count starts again from nothing
    clock.now += 600
    assert [throttle.allow(), throttle.allow()] == [1, None]
