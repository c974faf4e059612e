"""The job event stream through a real ASGI server (uvicorn), a real Redis and a real worker:
the stream shows the queued job, follows it while a worker runs it, ends, and closes."""

from __future__ import annotations

import json
import time

import pytest
import requests


@pytest.fixture
def uvicorn_api(api_server, queue_config, start_worker) -> str:
    """The API under plain uvicorn (tests/support/server.py), on the workers' storage."""
    return api_server(queue_config=queue_config, server="uvicorn",
                      media_root=start_worker.media_root,
                      env={"SSE_POLL_SECONDS": "0.05"}).url


def test_the_stream_follows_a_distributed_job_under_uvicorn(uvicorn_api, start_worker):
    body = requests.post(f"{uvicorn_api}/api/process-batch/distributed/",
                         json={"filters": ["sharpen"], "images": []}, timeout=30).json()
    events: list[tuple[str, dict]] = []
    started = time.monotonic()
    with requests.get(f"{uvicorn_api}/api/jobs/{body['id']}/events/", stream=True,
                      timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        name = None
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
                if len(events) == 1:
                    start_worker("w1")  # Given the queued job's first event, a worker runs it
            assert time.monotonic() - started < 90, events
        # The loop ends because the server closed the stream after `end`.
    assert events[0] == ("progress", events[0][1]) and events[0][1]["status"] == "queued"
    assert events[-1][0] == "end" and events[-1][1]["status"] == "completed"
    assert events[-1][1]["progress"]["completed"] == body["total"]
