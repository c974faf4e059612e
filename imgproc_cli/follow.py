"""Following a job until it finishes: the Server-Sent Events stream
``GET /api/jobs/<id>/events/``, or polling ``GET /api/jobs/<id>/`` where the server has no
stream (404/405) or no room for one (503)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import requests

from imgproc_cli.client import Client
from imgproc_cli.errors import ApiError, Unreachable

FINISHED = frozenset({"completed", "completed_with_errors", "failed", "cancelled"})
POLL_INTERVAL_S = 0.5
STREAM_READ_TIMEOUT_S = 60.0  # the server sends a keepalive every 15 s
# A stream that breaks this many times in a row, with no event in between, ends the follow.
MAX_STREAM_FAILURES = 5


@dataclass(frozen=True)
class Progress:
    """A job's counts, from an event's summary or a polled detail."""

    status: str
    total: int
    completed: int
    failed: int
    cancelled: int

    @property
    def done(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


def progress_of(job: dict[str, Any]) -> Progress:
    """Counts from a job summary (list item, SSE data) or a job detail."""
    counts = job.get("progress")
    if not isinstance(counts, dict):  # a local job's detail: count its results
        results = job.get("results") or []
        counts = {s: sum(r.get("status") == s for r in results)
                  for s in ("completed", "failed", "cancelled")}
    return Progress(status=str(job.get("status", "")), total=int(job.get("total") or 0),
                    completed=int(counts.get("completed") or 0),
                    failed=int(counts.get("failed") or 0),
                    cancelled=int(counts.get("cancelled") or 0))


def sse_events(chunks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """(event name, data) of each event in a ``text/event-stream`` body; comments
    (keepalives) skipped."""
    buffer = b""
    name, data = "message", list[str]()
    for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if not line:
                if data:
                    yield name, "\n".join(data)
                name, data = "message", []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


def follow(client: Client, job_id: str, on_update: Callable[[Progress], None],
           *, poll_interval_s: float = POLL_INTERVAL_S) -> Progress:
    """Report the job's progress to ``on_update`` until it has finished; returns the last."""
    failures = 0
    while True:
        try:
            last = _follow_stream(client, job_id, on_update)
        except _NoStream:
            return _poll(client, job_id, on_update, poll_interval_s)
        except requests.RequestException as exc:
            failures += 1
            if failures >= MAX_STREAM_FAILURES:
                raise Unreachable(f"the event stream of {job_id} kept breaking: {exc}") from exc
            time.sleep(min(5.0, 0.5 * 2 ** failures))
            continue
        if last is not None and last.finished:
            return last
        failures = 0 if last is not None else failures + 1
        if failures >= MAX_STREAM_FAILURES:
            return _poll(client, job_id, on_update, poll_interval_s)
        # The server closed a bounded stream before the end: connect again (not in a loop
        # that spins should it close every stream at once).
        time.sleep(poll_interval_s)


class _NoStream(Exception):
    pass


def _follow_stream(client: Client, job_id: str, on_update: Callable[[Progress], None]
                   ) -> Progress | None:
    try:
        response = client.request("GET", f"/api/jobs/{job_id}/events/", stream=True,
                                  timeout_s=STREAM_READ_TIMEOUT_S,
                                  headers={"Accept": "text/event-stream"})
    except ApiError as error:
        no_route = error.status in (404, 405) and error.code != "job_not_found"
        if no_route or error.status == 503:
            raise _NoStream from error
        raise
    last = None
    with response:
        if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
            raise _NoStream
        for name, data in sse_events(response.iter_content(chunk_size=None)):
            if name not in ("progress", "end"):
                continue
            try:
                last = progress_of(json.loads(data))
            except (ValueError, TypeError, AttributeError):
                continue  # not an event of this API: ignore it
            on_update(last)
            if name == "end" or last.finished:
                return last
    return last


def _poll(client: Client, job_id: str, on_update: Callable[[Progress], None],
          interval_s: float) -> Progress:
    while True:
        current = progress_of(client.get_json(f"/api/jobs/{job_id}/"))
        on_update(current)
        if current.finished:
            return current
        time.sleep(interval_s)
