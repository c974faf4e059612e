"""Job-finished callbacks: the HTTP side, shared by the API (local modes) and the workers.

- :func:`check_url`: http/https only, no credentials, at most MAX_URL_CHARS, the host resolved
  and every address it resolves to public (not private, loopback, link-local, multicast,
  reserved or unspecified); ``allow_private`` admits private and loopback addresses, never
  link-local (cloud metadata), multicast, reserved or unspecified ones
  (:func:`address_kind`). Raises :class:`CallbackRefused`.
- :func:`deliver`: one POST of the body, signed, to an address checked *at delivery time*
  (so a name that resolved to a public address at submission and to 127.0.0.1 now is refused:
  DNS rebinding), connecting to that very address; redirects are never followed, at most
  4 KiB of the answer is read, and the whole attempt (connect, send, answer) is cut off at
  ``timeout_s`` however slowly the receiver trickles.
- :func:`signature`: ``sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``, sent as
  ``X-Imgproc-Signature`` with the timestamp in ``X-Imgproc-Timestamp``.

The outbox, retries and the job's record of attempts are image_api/callbacks (the sender) and
distributed/callbacks.py (the Redis outbox of distributed jobs).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["MAX_URL_CHARS", "Attempt", "CallbackRefused", "Target", "address_kind", "check_url",
           "deliver", "signature"]

MAX_URL_CHARS = 2048
SIGNATURE_HEADER = "X-Imgproc-Signature"
TIMESTAMP_HEADER = "X-Imgproc-Timestamp"
_MAX_RESPONSE_BYTES = 4096


class CallbackRefused(ValueError):
    """A callback URL that may not be used; ``str()`` says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: when (epoch ms), the HTTP status or the error, how long, and
    the receiver's ``Retry-After`` in seconds (None without one, or a date form)."""

    at_ms: int
    status_code: int | None
    error: str | None
    duration_ms: float
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def address_kind(address: str) -> str:
    """``public``; ``private`` (RFC 1918, unique-local, shared address space, loopback: what
    CALLBACK_ALLOW_PRIVATE admits, for receivers on one's own network); or ``never``
    (link-local, where cloud metadata answers at 169.254.169.254; multicast, reserved,
    unspecified), refused whatever the setting."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:  # before is_reserved: ::1 is in a reserved block
        return "private"
    if ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "never"
    if ip.is_private or not ip.is_global:
        return "private"
    return "public"


def check_url(url: str, *, allow_private: bool = False) -> Target:
    """The checked target of ``url`` (see the module docstring); CallbackRefused if not."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise CallbackRefused(f"a callback URL has 1 to {MAX_URL_CHARS} characters")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise CallbackRefused("a callback URL has no spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise CallbackRefused(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackRefused("a callback URL is http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("a callback URL carries no credentials")
    host = parts.hostname
    if not host:
        raise CallbackRefused("a callback URL names a host")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise CallbackRefused(f"the callback host {host!r} does not resolve") from exc
    addresses = [str(info[4][0]) for info in infos]
    allowed = ("public", "private") if allow_private else ("public",)
    refused = [a for a in addresses if address_kind(a) not in allowed]
    if refused:
        raise CallbackRefused(f"the callback host {host!r} resolves to a non-public "
                              f"address ({refused[0]})")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses[0])


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 keyed by ``secret`` over ``"<timestamp>." + body``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with the certificate checked against the host name."""

    def __init__(self, target: Target, timeout_s: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout_s,
                         context=ssl.create_default_context())
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def deliver(url: str, body: bytes, *, secret: str, allow_private: bool = False,
            timeout_s: float = 5.0, headers: dict[str, str] | None = None) -> Attempt:
    """POST ``body`` (JSON) to ``url`` once, signed; the outcome as an :class:`Attempt`
    (never raises for network errors or a refused URL: they are the attempt's ``error``,
    a refusal's starting with ``refused:``). ``headers`` are sent too."""
    started = time.perf_counter()
    at_ms = int(time.time() * 1000)

    def done(status: int | None, error: str | None, retry_after_s: float | None = None
             ) -> Attempt:
        return Attempt(at_ms, status, error, round((time.perf_counter() - started) * 1000, 1),
                       retry_after_s)

    try:
        target = check_url(url, allow_private=allow_private)
    except CallbackRefused as exc:
        return done(None, f"refused: {exc}")
    timestamp = str(at_ms // 1000)
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(target, timeout_s)
    else:
        connection = http.client.HTTPConnection(target.address, target.port, timeout=timeout_s)
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port not in (80, 443):
        host_header += f":{target.port}"
    sent = {**(headers or {}), "Host": host_header, "Content-Type": "application/json",
            "User-Agent": "imgproc-callback/1", TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body)}
    # The socket timeout bounds each read; this bounds the attempt (a receiver trickling a
    # byte per second would pass every read's timeout).
    fired = threading.Event()
    cutoff = threading.Timer(timeout_s, _abort, args=(connection, fired))
    cutoff.daemon = True
    cutoff.start()
    try:
        connection.request("POST", target.path, body=body, headers=sent)
        response = connection.getresponse()
        response.read(_MAX_RESPONSE_BYTES)  # a redirect is an answer, never followed
        if fired.is_set():
            return done(None, f"timed out: no complete answer within {timeout_s:g} s")
        return done(response.status, None, _seconds(response.getheader("Retry-After")))
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if fired.is_set():
            return done(None, f"timed out: no complete answer within {timeout_s:g} s")
        return done(None, f"{type(exc).__name__}: {exc}"[:300])
    finally:
        cutoff.cancel()
        connection.close()


def _seconds(value: str | None) -> float | None:
    """A ``Retry-After`` in delta-seconds (the date form is not used: None)."""
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _abort(connection: http.client.HTTPConnection, fired: threading.Event) -> None:
    """Cut an attempt off: shut its socket down, so the blocked read returns at once."""
    fired.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
