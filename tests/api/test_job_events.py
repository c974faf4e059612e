"""GET /api/jobs/<id>/events/: Server-Sent Events of a job's progress, through Django's
AsyncClient (the async view as ASGI runs it), with a real Redis and a real worker."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

pytestmark = pytest.mark.django_db(transaction=True)  # the view reads in another thread
SLEEPY = {"steps": [{"filter": "sharpen", "params": {"intensity": 1}}]}


def parse(chunks: list[bytes]) -> list[tuple[str, object]]:
    """(event name, data) of each event; ("comment", text) for comments."""
    events: list[tuple[str, object]] = []
    for block in b"".join(chunks).decode().split("\n\n"):
        if not block:
            continue
        if block.startswith(":"):
            events.append(("comment", block[1:].strip()))
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


async def read_all(response, limit_s: float = 30.0) -> list[bytes]:
    async def collect() -> list[bytes]:
        return [chunk async for chunk in response.streaming_content]
    return await asyncio.wait_for(collect(), limit_s)


def test_a_finished_local_job_streams_one_end_event_and_closes(api, png_bytes, media_root):
    job = api.post("/api/process-batch/threading/", {**SLEEPY, "images": []},
                   format="json").json()

    async def stream():
        response = await AsyncClient().get(f"/api/jobs/{job['id']}/events/")
        return response, await read_all(response, 10)

    response, chunks = async_to_sync(stream)()

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    [(name, data)] = parse(chunks)
    assert name == "end"
    assert data["id"] == job["id"] and data["status"] == "completed"
    assert data["progress"]["completed"] == job["total"]
    assert data["url"].endswith(f"/api/jobs/{job['id']}/")


@pytest.mark.parametrize("job_id", ["job_" + "0" * 32, "nope", "job_x'; DROP"])
def test_unknown_or_malformed_job_ids_answer_404_json_before_any_stream(job_id):
    async def get():
        return await AsyncClient().get(f"/api/jobs/{job_id}/events/")

    response = async_to_sync(get)()

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"] == "job_not_found"


def test_a_distributed_job_streams_progress_then_ends(
    api, png_bytes, media_root, settings, queue_config, redis_client, start_worker
):
    settings.DISTRIBUTED = queue_config
    settings.SSE_POLL_SECONDS = 0.05
    body = api.post("/api/process-batch/distributed/", {**SLEEPY, "images": []},
                    format="json").json()

    async def stream():
        response = await AsyncClient().get(f"/api/jobs/{body['id']}/events/")
        iterator = aiter(response.streaming_content)
        first = await asyncio.wait_for(anext(iterator), 10)
        # Given a queued job's first event, when a worker starts, the stream follows it.
        await asyncio.to_thread(start_worker, "w1")
        rest = await asyncio.wait_for(_rest(iterator), 60)
        return response, [first, *rest]

    async def _rest(iterator):
        return [chunk async for chunk in iterator]

    response, chunks = async_to_sync(stream)()

    events = parse(chunks)
    assert response.status_code == 200
    assert events[0][0] == "progress" and events[0][1]["status"] == "queued"
    assert events[-1][0] == "end" and events[-1][1]["status"] == "completed"
    assert events[-1][1]["progress"]["completed"] == body["total"]
    assert all(name in ("progress", "comment") for name, _ in events[:-1])


def test_a_stream_sends_keepalives_and_ends_at_its_time_limit(
    api, media_root, settings, queue_config, redis_client
):
    settings.DISTRIBUTED = queue_config
    settings.SSE_POLL_SECONDS = 0.02
    settings.SSE_KEEPALIVE_SECONDS = 0.1
    settings.SSE_MAX_SECONDS = 0.5
    body = api.post("/api/process-batch/distributed/", {**SLEEPY, "images": []},
                    format="json").json()  # no worker: it stays queued

    async def stream():
        response = await AsyncClient().get(f"/api/jobs/{body['id']}/events/")
        return await read_all(response, 10)

    events = parse(async_to_sync(stream)())

    assert events[0][0] == "progress"
    assert ("comment", "keepalive") in events
    assert not any(name == "end" for name, _ in events)
