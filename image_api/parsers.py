"""Strict, bounded JSON for request bodies: standard JSON only, its cost bounded by its size.

Python's decoder accepts ``NaN``/``Infinity``, turns ``1e400`` into ``inf``, recurses once
per nesting level and builds every element it reads: 25 MiB of ``{}`` costs ten CPU-seconds
and more than a gigabyte before any check could look at the result. So a document is
measured before it is parsed, in linear passes that build nothing:

- at most MAX_JSON_BYTES of text (413 ``json_too_large``);
- at most MAX_JSON_ELEMENTS structural tokens (brackets and commas, outside strings: an upper
  bound on the values it holds; 400 ``json_too_complex``);
- nested at most MAX_JSON_DEPTH levels (400 ``json_too_deep``).

Parsing what passes costs at most a few tens of milliseconds and a small multiple of its size
in memory. Every JSON the API reads from a client goes through :func:`loads`: the request
body (``JSONParser``, set in ``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``) and the multipart
``options`` field. The body's charset is checked first (image_api/bodies.py).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from image_api.bodies import check_charset

__all__ = [
    "BOUNDS_ERRORS",
    "MAX_JSON_DEPTH",
    "JSONParser",
    "JSONTooComplex",
    "JSONTooDeep",
    "JSONTooLarge",
    "loads",
]

# The deepest valid request is 4 levels ({"steps": [{"params": {...}}]}); leave room.
MAX_JSON_DEPTH = 32

# A JSON string, or the unterminated rest of one: possessive, so it never backtracks and one
# pass over any text is linear (an unterminated string runs to the end; json.loads refuses it).
_STRING = re.compile(r'"(?:[^"\\]++|\\.?)*+"?', re.S)
_BRACKETS = re.compile(r"[\[\]{}]")
_STRUCTURAL = ",[]{}"


class JSONTooDeep(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH."""

    code = "json_too_deep"

    def __init__(self) -> None:
        super().__init__(f"JSON nested more than {MAX_JSON_DEPTH} levels deep is not accepted.")


class JSONTooLarge(ValueError):
    """A JSON document of more than MAX_JSON_BYTES."""

    code = "json_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON documents are limited to {limit} bytes (MAX_JSON_BYTES); "
                         "images go in multipart uploads, not in JSON.")
        self.limit = limit


class JSONTooComplex(ValueError):
    """A JSON document with more than MAX_JSON_ELEMENTS brackets and commas."""

    code = "json_too_complex"

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(f"JSON with {count} or more elements is not accepted; the limit is "
                         f"{limit} (MAX_JSON_ELEMENTS).")
        self.limit = limit


def _limits() -> tuple[int, int]:
    api = settings.API_SETTINGS
    return api.bodies.max_json_bytes, api.bodies.max_json_elements


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def measure(text: str, *, max_elements: int) -> None:
    """Raise JSONTooComplex or JSONTooDeep for text whose parse would cost too much. Builds
    no value: one substitution pass and counting, then a walk over at most ``max_elements``
    brackets."""
    bare = _STRING.sub('""', text)
    count = sum(bare.count(char) for char in _STRUCTURAL)
    if count > max_elements:
        raise JSONTooComplex(count, max_elements)
    depth = 0
    for match in _BRACKETS.finditer(bare):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise JSONTooDeep()


def loads(text: str | bytes) -> Any:
    """Parse strict JSON (no NaN, Infinity or numbers overflowing a double) whose size,
    element count and depth are within their limits. Raises JSONTooLarge, JSONTooComplex,
    JSONTooDeep or another ``ValueError`` (UnicodeDecodeError for bytes that are not UTF-8)."""
    max_bytes, max_elements = _limits()
    if len(text) > max_bytes:
        raise JSONTooLarge(max_bytes)
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8")
    measure(text, max_elements=max_elements)
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise JSONTooDeep() from None


# What loads raises for a document over its bounds (each has its own code and status).
BOUNDS_ERRORS = (JSONTooLarge, JSONTooComplex, JSONTooDeep)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, bounded: the charset must be a text one (UnsupportedCharset), at
    most MAX_JSON_BYTES are read (JSONTooLarge), then :func:`loads`. Those domain errors reach
    image_api/errors.py, which gives them their status; a body that is not JSON is DRF's
    400 ``parse_error``."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        max_bytes, _ = _limits()
        encoding = check_charset((parser_context or {}).get("encoding")) or "utf-8"
        raw = stream.read(max_bytes + 1) if stream is not None else b""
        if len(raw) > max_bytes:
            raise JSONTooLarge(max_bytes)
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}: {exc.reason} "
                             f"at byte {exc.start}") from None
        try:
            return loads(text)
        except BOUNDS_ERRORS:
            raise
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
