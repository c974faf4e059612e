"""A real HTTP receiver on a loopback port (a ThreadingHTTPServer on 127.0.0.1:0), for tests
of clients: webhook/callback deliveries, the CLI against scripted answers.

Every request is recorded (method, path as sent, headers, body) before it is answered. By
default a request gets the next of ``statuses`` (answered in turn; 200 once they run out),
with an empty body and, when ``location`` is set, that Location header. ``routes`` and
``fallback`` replace the scripted answers with handlers of one's own::

    def test_a_callback(receiver):
        receiver.statuses = [503]                        # the first POST fails, then 200
        ...deliver to f"{receiver.url}/hook"...
        first, second = receiver.wait_for(2, timeout_s=30)
        assert second.json()["status"] == "completed"
        assert second.headers["x-imgproc-signature"].startswith("sha256=")

    receiver.routes[("GET", "/api/jobs/")] = lambda h: respond(h, 200, {"items": []})

``receiver`` is the pytest fixture (started, and shut down at teardown); ``run_receiver()``
the same as a context manager, for fixtures of a wider scope.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

__all__ = ["ReceivedRequest", "Receiver", "receiver", "respond", "run_receiver"]


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str  # as sent, query string included
    headers: CaseInsensitiveDict[str]  # any case: headers["x-imgproc-signature"]
    body: bytes

    @property
    def route(self) -> str:
        """The path without its query string."""
        return self.path.split("?", 1)[0]

    def json(self) -> Any:
        return json.loads(self.body)


class ReceiverHandler(BaseHTTPRequestHandler):
    """The request handler; a route's handler gets it, the request's record in ``received``."""

    protocol_version = "HTTP/1.1"
    receiver: Receiver
    received: ReceivedRequest

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()  # the chunk's CRLF
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        body = b"" if self.command == "HEAD" else self._read_body()
        self.received = ReceivedRequest(self.command, self.path,
                                        CaseInsensitiveDict(self.headers.items()), body)
        self.receiver._record(self.received)
        route = self.receiver.routes.get((self.command, self.received.route))
        if route is not None:
            route(self)
        elif self.receiver.fallback is not None:
            self.receiver.fallback(self)
        else:
            self.receiver._answer(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


Route = Callable[[ReceiverHandler], None]


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=list)  # answered in turn; 200 once exhausted
    location: str | None = None  # a Location header on every scripted answer
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)  # (method, route)
    fallback: Route | None = None  # answers what no route does, instead of ``statuses``
    requests: list[ReceivedRequest] = field(default_factory=list)
    # Set when the receiver shuts down: a handler holding a response open may wait on it.
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        handler = type("Handler", (ReceiverHandler,), {"receiver": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name=f"receiver-{self.port}")
        self._thread.start()
        return self

    def close(self) -> None:
        self.release.set()
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(10)
        self.server.server_close()

    def _record(self, request: ReceivedRequest) -> None:
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()

    def _answer(self, handler: ReceiverHandler) -> None:
        with self._changed:
            status = self.statuses.pop(0) if self.statuses else 200
        headers = {"Location": self.location} if self.location else {}
        respond(handler, status, b"", headers)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests so far, of this method and path (without query) if given."""
        return sum(1 for r in list(self.requests)
                   if method in (None, r.method) and path in (None, r.route))

    def wait_for(self, n: int, timeout_s: float = 10.0) -> list[ReceivedRequest]:
        """Wait until at least ``n`` requests have arrived (fail the test after
        ``timeout_s``); the requests so far."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= n, timeout_s):
                pytest.fail(f"timed out after {timeout_s}s waiting for {n} request(s); "
                            f"received {len(self.requests)}: "
                            f"{[(r.method, r.path) for r in self.requests]}")
            return list(self.requests)


def respond(handler: BaseHTTPRequestHandler, status: int, body: object = b"",
            headers: dict[str, str] | None = None) -> None:
    """Answer ``status`` with ``body``: bytes as they are, anything else as JSON."""
    if isinstance(body, bytes):
        data, content_type = body, None
    else:
        data, content_type = json.dumps(body).encode(), "application/json"
    handler.send_response(status)
    if content_type:
        handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)


@contextlib.contextmanager
def run_receiver() -> Iterator[Receiver]:
    """A started receiver, shut down on the way out."""
    started = Receiver().start()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with run_receiver() as started:
        yield started
