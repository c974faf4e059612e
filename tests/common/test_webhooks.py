"""Callback delivery (common/webhooks.py) against a real HTTP receiver on 127.0.0.1: the
signature, the body, no redirects followed, and the SSRF refusals. The receiver is
tests/support/receiver.py's fixture."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from common.webhooks import CallbackRefused, check_url, deliver, signature
from tests.support.receiver import respond

SECRET = "s3cret-for-tests"


def test_a_delivery_is_signed_over_the_timestamp_and_the_body(receiver):
    body = json.dumps({"id": "job_1", "status": "completed"}).encode()

    attempt = deliver(f"{receiver.url}/hook?x=1", body, secret=SECRET, allow_private=True)

    assert attempt.ok and attempt.status_code == 200 and attempt.error is None
    [request] = receiver.wait_for(1)
    assert (request.method, request.path, request.body) == ("POST", "/hook?x=1", body)
    headers = request.headers
    expected = hmac.new(SECRET.encode(), headers["X-Imgproc-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Imgproc-Signature"] == f"sha256={expected}"
    assert headers["Content-Type"] == "application/json"
    assert signature(SECRET, headers["X-Imgproc-Timestamp"], body + b" ") != \
        headers["X-Imgproc-Signature"]


def test_an_error_status_is_recorded_and_a_redirect_is_not_followed(receiver):
    receiver.statuses = [500, 302]
    receiver.location = f"{receiver.url}/elsewhere"

    first = deliver(receiver.url, b"{}", secret=SECRET, allow_private=True)
    second = deliver(receiver.url, b"{}", secret=SECRET, allow_private=True)

    assert (first.ok, first.status_code) == (False, 500)
    assert (second.ok, second.status_code) == (False, 302)
    assert [r.path for r in receiver.requests] == ["/", "/"]  # /elsewhere never asked


def test_a_loopback_receiver_is_refused_without_the_setting(receiver):
    attempt = deliver(receiver.url, b"{}", secret=SECRET, allow_private=False)

    assert attempt.status_code is None and attempt.error.startswith("refused:")
    assert receiver.requests == []


def test_an_unreachable_receiver_is_an_error_not_an_exception():
    attempt = deliver("http://127.0.0.1:9/", b"{}", secret=SECRET, allow_private=True,
                      timeout_s=2)

    assert attempt.status_code is None and "Error" in attempt.error


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://localhost/", "http://10.1.2.3/", "http://192.168.0.1/",
    "http://172.16.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
    "http://[::ffff:127.0.0.1]/", "http://224.0.0.1/", "http://0.0.0.0/", "http://240.0.0.1/",
    "http://100.64.0.1/", "http://[fe80::1]/", "http://[fc00::1]/",
])
def test_non_public_addresses_are_refused(url):
    with pytest.raises(CallbackRefused, match="non-public"):
        check_url(url)


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http://user:pw@127.0.0.1/",
    "http:///nohost", "http://127.0.0.1:99999/", "http://exa mple.com/", "",
    "http://x/" + "a" * 2048, "http://no-such-host.invalid/",
])
def test_malformed_or_unusable_urls_are_refused(url):
    with pytest.raises(CallbackRefused):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/",
                                 "http://[fe80::1]/", "http://224.0.0.1/", "http://0.0.0.0/",
                                 "http://240.0.0.1/"])
def test_link_local_multicast_and_reserved_are_refused_even_when_private_is_allowed(url):
    with pytest.raises(CallbackRefused, match="non-public"):
        check_url(url, allow_private=True)


def test_the_setting_allows_private_addresses():
    assert check_url("http://127.0.0.1:8080/h", allow_private=True).address == "127.0.0.1"



@pytest.fixture
def trickler() -> Iterator[tuple[str, threading.Event]]:
    """A receiver that reads the request, then answers one byte every 0.2 s, forever: each
    read gets a byte well within any socket timeout, the answer never ends."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
            for byte in answer:
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/", stop
    finally:
        stop.set()
        server.close()
        thread.join(5)


def test_a_trickling_receiver_is_cut_off_at_the_attempts_time_limit(trickler):
    url, _ = trickler
    started = time.monotonic()

    attempt = deliver(url, b"{}", secret=SECRET, allow_private=True, timeout_s=1.0)

    took = time.monotonic() - started
    assert attempt.status_code is None and attempt.error.startswith("timed out"), attempt
    assert took < 2.5, took


def test_extra_headers_are_sent_and_cannot_replace_the_signature(receiver):
    attempt = deliver(receiver.url, b"{}", secret=SECRET, allow_private=True,
                      headers={"X-Imgproc-Event": "job.finished",
                               "X-Imgproc-Signature": "sha256=forged"})

    assert attempt.ok
    headers = receiver.requests[0].headers
    assert headers["X-Imgproc-Event"] == "job.finished"
    assert headers["X-Imgproc-Signature"] != "sha256=forged"


@pytest.mark.parametrize("header, seconds", [("7", 7.0), (" 120 ", 120.0), (None, None),
                                             ("Wed, 21 Oct 2026 07:28:00 GMT", None),
                                             ("-3", None), ("soon", None)])
def test_a_retry_after_in_seconds_is_part_of_the_attempt(receiver, header, seconds):
    receiver.fallback = lambda h: respond(h, 503, b"", {"Retry-After": header} if header else {})

    attempt = deliver(receiver.url, b"{}", secret=SECRET, allow_private=True)

    assert attempt.status_code == 503 and attempt.retry_after_s == seconds
