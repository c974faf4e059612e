"""The HTTP side: one session per run, the API key as a bearer token, the server's JSON errors
turned into :class:`ApiError`, and 429 answers retried after their ``Retry-After``."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from imgproc_cli import __version__
from imgproc_cli.errors import ApiError, Unreachable

DEFAULT_API_URL = "http://127.0.0.1:8000"
# A 429 is retried at most this many times, each wait capped: a server that keeps refusing
# ends the run with its message instead of hanging it.
MAX_429_RETRIES = 5
MAX_RETRY_WAIT_S = 60.0


def retry_after_seconds(value: str | None, default_s: float = 1.0,
                        now: datetime | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return default_s
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default_s
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_from_response(response: requests.Response) -> ApiError:
    """The server's ``{"error": code, "message": ...}`` body as an ApiError (any other body:
    its first line, with the status as the code)."""
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    code, message = f"http_{response.status_code}", ""
    if isinstance(body, dict) and "error" in body:
        error = body["error"]
        if isinstance(error, dict):  # {"error": {"code": .., "message": ..}}
            code = str(error.get("code") or code)
            message = str(error.get("message") or "")
        else:
            code = str(error)
        message = str(body.get("message") or message)
    if not message:
        text = (response.text or "").strip().splitlines()
        message = text[0][:200] if text else (response.reason or "no message")
    return ApiError(response.status_code, code, message,
                    body if isinstance(body, dict) else None,
                    method=response.request.method or "", url=response.url)


class Client:
    """Calls the API at ``base_url``; ``notify`` receives one line per retry."""

    def __init__(self, base_url: str = DEFAULT_API_URL, api_key: str | None = None, *,
                 timeout_s: float = 60.0, max_429_retries: int = MAX_429_RETRIES,
                 max_retry_wait_s: float = MAX_RETRY_WAIT_S,
                 notify: Callable[[str], None] | None = None) -> None:
        parts = urlsplit(base_url.strip() or DEFAULT_API_URL)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        self.timeout_s = timeout_s
        self.max_429_retries = max_429_retries
        self.max_retry_wait_s = max_retry_wait_s
        self.notify = notify or (lambda line: None)
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"imgproc-cli/{__version__}"
        self.session.headers["Accept"] = "application/json"
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"

    def url(self, path_or_url: str) -> str:
        """An absolute URL on this server: a path is joined to the base URL; a URL the server
        built (``output_url``…) keeps its path but goes to the host we were given."""
        if path_or_url.startswith(("http://", "https://")):
            parts = urlsplit(path_or_url)
            base = urlsplit(self.base_url)
            return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
        return self.base_url + "/" + path_or_url.lstrip("/")

    def request(self, method: str, path: str, *, stream: bool = False,
                timeout_s: float | None = None, **kwargs: Any) -> requests.Response:
        """Send a request; a 2xx/3xx response is returned, anything else raised as
        :class:`ApiError` (after the 429 retries) or :class:`Unreachable`."""
        url = self.url(path)
        for attempt in range(self.max_429_retries + 1):
            response = self._send(method, url, stream=stream, timeout_s=timeout_s, **kwargs)
            if response.status_code < 400:
                return response
            error = error_from_response(response)
            response.close()
            if response.status_code != 429 or attempt == self.max_429_retries:
                if response.status_code == 429:
                    error.message += f" (gave up after {self.max_429_retries} retries)"
                raise error
            wait_s = min(retry_after_seconds(response.headers.get("Retry-After")),
                         self.max_retry_wait_s)
            self.notify(f"server busy ({error.code}): retrying in {wait_s:g} s "
                        f"(retry {attempt + 1} of {self.max_429_retries})")
            time.sleep(wait_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, *, stream: bool, timeout_s: float | None,
              **kwargs: Any) -> requests.Response:
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        try:
            return self.session.request(method, url, stream=stream,
                                        timeout=(min(10.0, timeout), timeout), **kwargs)
        except requests.Timeout as exc:
            raise Unreachable(f"the server at {self.base_url} did not answer within "
                              f"{timeout:g} s ({method} {urlsplit(url).path})") from exc
        except requests.ConnectionError as exc:
            raise Unreachable(f"cannot reach the server at {self.base_url}: "
                              f"{_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise Unreachable(f"the request to {self.base_url} failed: {exc}") from exc

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return _json(self.request("GET", path, **kwargs))

    def post_json(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return _json(self.request("POST", path, json=body, **kwargs))


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ApiError(response.status_code, "not_json",
                       f"the server answered {response.headers.get('Content-Type')!r}, "
                       "not JSON: is this the image API?", method=response.request.method or "",
                       url=response.url) from exc


def _reason(exc: requests.ConnectionError) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known",
                   "Temporary failure in name resolution", "No route to host",
                   "Connection reset by peer", "Network is unreachable"):
        if marker in text:
            return marker.lower()
    return text[:200]
