"""Strict JSON for request bodies: standard JSON only, nested at most MAX_JSON_DEPTH levels.

Python's decoder accepts ``NaN``/``Infinity``, turns ``1e400`` into ``inf`` and recurses once
per nesting level, so a body nested a few thousand levels deep raises ``RecursionError``
(and a few hundred levels would recurse again in every later walk over the data). Every JSON
the API reads from a client goes through :func:`loads`: the request body (``JSONParser``,
set in ``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``) and the multipart ``options`` field.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

__all__ = ["MAX_JSON_DEPTH", "JSONParser", "JSONTooDeep", "loads"]

# The deepest valid request is 4 levels ({"steps": [{"params": {...}}]}); leave room.
MAX_JSON_DEPTH = 32


class JSONTooDeep(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested more than {MAX_JSON_DEPTH} levels deep is not accepted.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _deeper_than(value: Any, limit: int) -> bool:
    """True if containers nest more than ``limit`` levels (iterative: no recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def loads(text: str | bytes) -> Any:
    """Parse strict JSON (no NaN, Infinity or numbers overflowing a double), at most
    MAX_JSON_DEPTH levels deep. Raises ``JSONTooDeep`` or another ``ValueError``."""
    try:
        data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise JSONTooDeep() from None
    if _deeper_than(data, MAX_JSON_DEPTH):
        raise JSONTooDeep()
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with :func:`loads`: a too-deep body is a 400 ``json_too_deep``."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return loads(codecs.getreader(encoding)(stream).read())
        except JSONTooDeep as exc:
            raise ParseError(str(exc), code="json_too_deep") from None
        except ValueError as exc:  # includes UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from None
