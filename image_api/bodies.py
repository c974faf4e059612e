"""What a request body may be, declared once: its charset and its size by content type.

Read by the ASGI front door (project/asgi_middleware.py), before a byte of the body is read,
by ``BodyLimitMiddleware`` (the same rules for any other server), and by the JSON parser
(image_api/parsers.py), so a body is refused at the first place that can see it.

- **Charset.** The ``charset`` of a ``Content-Type`` picks the codec that turns the body into
  text. Python's codec registry also holds bytes-to-bytes codecs (``bz2``, ``zlib``,
  ``base64``, ``rot13``...): an 825-byte body "in bz2" inflates to a gigabyte. Only text
  charsets whose output is never longer than their input are accepted: UTF-8 (RFC 8259's
  one encoding for JSON, ASCII being a subset) and UTF-16/UTF-32. Anything else is a 415
  ``unsupported_charset``.
- **Size.** Only ``multipart/form-data`` carries image bytes: it is allowed up to
  MAX_REQUEST_BYTES. Every other body (JSON) is allowed up to MAX_JSON_BYTES. Since the
  accepted charsets never inflate, the decoded text is no larger than that either.
"""

from __future__ import annotations

import codecs

from django.utils.http import parse_header_parameters

__all__ = [
    "IMAGE_BODY_TYPE",
    "TEXT_CHARSETS",
    "UnsupportedCharset",
    "body_limit",
    "check_charset",
    "content_charset",
    "too_large_message",
]

# Canonical codec names (``codecs.lookup(name).name``) of the accepted charsets.
TEXT_CHARSETS = frozenset({
    "utf-8", "ascii", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be",
})
ACCEPTED_CHARSETS_TEXT = "utf-8 (or us-ascii), utf-16, utf-32"
# The one content type whose body holds image data (uploads).
IMAGE_BODY_TYPE = "multipart/form-data"


class UnsupportedCharset(ValueError):
    """A body declared in a charset that is not one of TEXT_CHARSETS (-> 415)."""

    code = "unsupported_charset"

    def __init__(self, charset: str) -> None:
        shown = "".join(ch for ch in charset[:40] if ch.isprintable())
        super().__init__(
            f"The charset {shown!r} is not accepted; send request bodies in "
            f"{ACCEPTED_CHARSETS_TEXT} (JSON is UTF-8, RFC 8259).")
        self.charset = shown


def content_charset(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type header value, or None."""
    _, params = parse_header_parameters(content_type or "")
    value = params.get("charset")
    return value.strip() if value is not None else None


def check_charset(charset: str | None) -> str | None:
    """The canonical name of an accepted charset (None stays None: the default, UTF-8);
    raises UnsupportedCharset for any other."""
    if charset is None:
        return None
    try:
        name = codecs.lookup(charset).name
    except (LookupError, ValueError):  # ValueError: an embedded NUL
        raise UnsupportedCharset(charset) from None
    if name not in TEXT_CHARSETS:
        raise UnsupportedCharset(charset)
    return name


def body_limit(content_type: str, *, max_request_bytes: int, max_json_bytes: int) -> int:
    """The largest body a request of this Content-Type may send."""
    media_type, _ = parse_header_parameters(content_type or "")
    return max_request_bytes if media_type == IMAGE_BODY_TYPE else max_json_bytes


def too_large_message(size: int | None, limit: int, content_type: str) -> str:
    """Why a body is refused for its size, naming the setting that caps it."""
    media_type, _ = parse_header_parameters(content_type or "")
    which = "MAX_REQUEST_BYTES" if media_type == IMAGE_BODY_TYPE else (
        "MAX_JSON_BYTES: only multipart/form-data uploads may be larger")
    said = f"The body is {size} bytes" if size is not None else "The body is larger"
    return f"{said}; the limit is {limit} ({which})."
