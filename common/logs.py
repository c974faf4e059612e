"""One log format for the API (Django and gunicorn) and the workers: one line per event.

JSON by default (``LOG_FORMAT=json``)::

    {"ts": "2026-11-24T07:20:32.190Z", "level": "info", "logger": "workers.runtime",
     "event": "task.done", "job_id": "job_9c…", "task_id": "job_9c….3", "worker": "worker-1",
     "attempt": 1, "duration_ms": 58.2}

or the same fields as logfmt ``key=value`` pairs (``LOG_FORMAT=logfmt``). The event is the
log message (``logger.info("task.done", extra={...})``); ``request_id``, ``job_id`` and
``task_id`` come from context variables (:func:`log_context`, set per request by the API's
middleware and per task by a worker) through :class:`ContextFilter`; anything passed with
``extra=`` follows. :func:`logging_config` is the one ``dictConfig`` for Django's LOGGING,
gunicorn's ``logconfig_dict`` and the workers.
"""

from __future__ import annotations

import json
import logging
import logging.config
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
JOB_ID: ContextVar[str | None] = ContextVar("job_id", default=None)
TASK_ID: ContextVar[str | None] = ContextVar("task_id", default=None)
_CONTEXT: dict[str, ContextVar[str | None]] = {
    "request_id": REQUEST_ID,
    "job_id": JOB_ID,
    "task_id": TASK_ID,
}
ID_FIELDS = tuple(_CONTEXT)
OUTPUTS = ("json", "logfmt")

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
}
# Django's django.request lines carry the HttpRequest itself; its id is kept as request_id.
_DROPPED = frozenset({"request"})


def current_request_id() -> str | None:
    """The id of the HTTP request being handled here (None outside a request)."""
    return REQUEST_ID.get()


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Within the block, every log line of this thread (or task) carries these ids:
    ``request_id``, ``job_id``, ``task_id``."""
    unknown = set(ids) - set(_CONTEXT)
    if unknown:
        raise TypeError(f"unknown log context field {', '.join(sorted(unknown))}")
    tokens = [(_CONTEXT[name], _CONTEXT[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class ContextFilter(logging.Filter):
    """Adds the context's ids to each record (a handler filter: it sees propagated records)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        for name, var in _CONTEXT.items():
            if fields.get(name) is None:
                value = var.get()
                if value is None and name == "request_id":
                    # django.request logs after the middleware returned: read it off the request.
                    value = getattr(fields.get("request"), "request_id", None)
                if value is not None:
                    fields[name] = value
        return True


class StructuredFormatter(logging.Formatter):
    """ts, level, logger, event, the ids, then the record's extra fields; one line."""

    def __init__(self, output: str = "json") -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"log output must be one of {', '.join(OUTPUTS)}, not {output!r}")
        self.output = output

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        created = datetime.fromtimestamp(record.created, tz=UTC)
        fields: dict[str, Any] = {
            "ts": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        extra = record.__dict__
        for name in ID_FIELDS:
            if extra.get(name) is not None:
                fields[name] = extra[name]
        for key, value in extra.items():
            if not (key in _STANDARD or key in _DROPPED or key in fields or key.startswith("_")):
                fields[key] = value
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return fields

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        if self.output == "json":
            return json.dumps(fields, default=str)
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())


def _logfmt_value(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = "" if value is None else str(value)
    if text == "" or not text.isprintable() or any(c in text for c in ' "=\\'):
        return json.dumps(text)  # quoted, with \n, \" and \\ escaped: still one line
    return text


def logging_config(
    level: str, output: str, loggers: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: every record to stderr through one
    StructuredFormatter; ``loggers`` adds per-logger entries (Django's, gunicorn's)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"structured": {"()": StructuredFormatter, "output": output}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "structured",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {name: dict(config) for name, config in (loggers or {}).items()},
    }


def configure_logging(level: str, output: str = "json") -> None:
    """Set up a process that has no framework doing it (the workers)."""
    logging.config.dictConfig(logging_config(level, output))
    logging.captureWarnings(True)


class LogThrottle:
    """At most one log line per ``interval_s`` for a noisy event (per process; thread-safe).

    :meth:`allow` answers None while the line is to be left out, else the number of lines
    left out since the last one, to log with it. The first call is always allowed."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next = -math.inf
        self._suppressed = 0

    def allow(self) -> int | None:
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._suppressed += 1
                return None
            self._next = now + self.interval_s
            suppressed, self._suppressed = self._suppressed, 0
            return suppressed
