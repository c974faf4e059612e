"""The API's front door at the ASGI layer, before Django reads anything.

The API is served by gunicorn with uvicorn workers (project/gunicorn_conf.py): an event loop
holds every connection, so a client that trickles its headers or body costs a socket, not a
thread, and cannot starve the others. Django's ASGI handler then reads the whole body
(spooling it to a temp file past FILE_UPLOAD_MAX_MEMORY_SIZE) before any Django middleware
runs, so the limits on bodies live here, around it:

- A ``charset`` that is not a text one (image_api/bodies.py): 415 at once, nothing read.
- ``Content-Length`` over the body's cap (MAX_REQUEST_BYTES for multipart/form-data uploads,
  MAX_JSON_BYTES for every other body): 413 at once, nothing read.
- A body without a length (chunked) is counted as it arrives and cut off at the cap: 413, and
  no more than the cap ever reached memory or the temp file.
- A body still incomplete REQUEST_BODY_TIMEOUT_SECONDS after the request began: 408.
- A request not answered within REQUEST_DEADLINE_SECONDS: 504 (a view that runs in a thread
  cannot be interrupted; it ends on its own and its answer is dropped).
- At most MAX_CONCURRENT_REQUESTS requests of this process are in Django's hands at once.
  Django runs each request's sync code in a thread of its own, so this bounds the threads
  (and the database connections, and the memory of what the views hold). A request past the
  cap waits, holding no thread, once its body has arrived (the deadline still runs); the
  health probes and the job event streams (async, capped by SSE_MAX_STREAMS) do not count.
- One structured access line per request (``event: http.access``), as gunicorn's sync
  workers wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from image_api.bodies import (
    UnsupportedCharset,
    body_limit,
    check_charset,
    content_charset,
    too_large_message,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("api.access")


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class FrontDoor:
    """Body caps, deadlines and the access line around an ASGI app (see the module)."""

    def __init__(self, app: App, *, max_body_bytes: int, body_timeout_s: float,
                 deadline_s: float, max_concurrent: int = 0,
                 max_json_bytes: int | None = None) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_json = max_body_bytes if max_json_bytes is None else max_json_bytes
        self.body_timeout_s = body_timeout_s
        self.deadline_s = deadline_s
        self.max_concurrent = max_concurrent  # 0: no cap
        self._slots: asyncio.Semaphore | None = None  # made in the serving loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        state: dict[str, Any] = {"status": None, "bytes": 0, "request_id": None, "refused": None}

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                for key, value in message.get("headers", []):
                    if key.lower() == b"x-request-id":
                        state["request_id"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self._serve(scope, receive, tracked_send, state, started)
        finally:
            self._log(scope, state, started)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, state: dict[str, Any],
                     started: float) -> None:
        content_type = (_header(scope, b"content-type") or b"").decode("latin-1")
        max_body = body_limit(content_type, max_request_bytes=self.max_body,
                              max_json_bytes=self.max_json)
        refused = self._refuse_at_once(scope, content_type, max_body)
        if refused is not None:
            await _send_error(send, refused.status, refused.code, refused.message)
            return
        received = 0
        body_done = False
        slots = self._slots_for(scope)
        holding = False

        async def guarded_receive() -> Message:
            nonlocal received, body_done, holding
            if state["refused"] is not None:
                return {"type": "http.disconnect"}
            if body_done:
                # Django listens for a disconnect while the view runs: pass it straight
                # through (wait_for here could turn Django's cancellation of that listener
                # into a disconnect, on Python 3.11).
                return await receive()
            left = self.body_timeout_s - (time.monotonic() - started)
            try:
                message = await asyncio.wait_for(receive(), timeout=max(left, 0.001))
            except TimeoutError:
                state["refused"] = _Refused(
                    408, "request_timeout",
                    f"The request body did not arrive within {self.body_timeout_s:g} s.")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                body_done = not message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > max_body:
                    state["refused"] = _Refused(
                        413, "request_too_large", too_large_message(None, max_body, content_type))
                    return {"type": "http.disconnect"}
                if body_done and slots is not None:
                    # Django hands the request to a thread once it has the whole body: wait
                    # for a slot first (here no thread is held).
                    await slots.acquire()
                    holding = True
            return message

        try:
            await asyncio.wait_for(self.app(scope, guarded_receive, send), self.deadline_s)
        except TimeoutError:
            if state["status"] is None:
                await _send_error(send, 504, "deadline_exceeded",
                                  f"The request took longer than {self.deadline_s:g} s.")
            return
        finally:
            if holding and slots is not None:
                slots.release()
        refused = state["refused"]
        if refused is not None and state["status"] is None:
            await _send_error(send, refused.status, refused.code, refused.message)

    @staticmethod
    def _refuse_at_once(scope: Scope, content_type: str, max_body: int) -> _Refused | None:
        """What the headers alone refuse: a charset that is not text, a length over the cap."""
        try:
            check_charset(content_charset(content_type))
        except UnsupportedCharset as exc:
            return _Refused(415, exc.code, str(exc))
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            size = int(length) if length.isdigit() else None
            return _Refused(413, "request_too_large",
                            too_large_message(size, max_body, content_type))
        return None

    def _slots_for(self, scope: Scope) -> asyncio.Semaphore | None:
        """The semaphore this request counts against; None for the uncounted ones."""
        path = str(scope.get("path", ""))
        if self.max_concurrent <= 0 or path.startswith("/api/health/") \
                or path.endswith("/events/"):
            return None
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        return self._slots

    @staticmethod
    def _log(scope: Scope, state: dict[str, Any], started: float) -> None:
        client = scope.get("client")
        access_log.info("http.access", extra={
            "method": scope.get("method"),
            "path": scope.get("path"),
            "status": state["status"],
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
            "bytes": state["bytes"],
            "remote_addr": client[0] if client else None,
            **({"request_id": state["request_id"]} if state["request_id"] else {}),
        })
