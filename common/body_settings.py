"""Request bodies' caps (image_api/bodies.py, image_api/parsers.py): a group nested in
``ApiSettings.bodies``. Only multipart/form-data bodies carry image data and may be large;
every other body is JSON, capped far lower, and its parse cost bounded before it is parsed."""

from __future__ import annotations

from dataclasses import dataclass

from common.env import Var, setting


@dataclass(frozen=True)
class BodyLimits:
    """MAX_REQUEST_BYTES, MAX_JSON_BYTES and MAX_JSON_ELEMENTS."""

    max_request_bytes: int = setting(
        Var("MAX_REQUEST_BYTES", "largest multipart/form-data request body (uploads): one "
            "whose Content-Length says more is refused (413) before any of it is read",
            unit="bytes", minimum=1),
        256 * 1024 * 1024,
    )
    max_json_bytes: int = setting(
        Var("MAX_JSON_BYTES", "largest JSON document: a request body that is not "
            "multipart/form-data (refused with 413 before it is read when its Content-Length "
            "says more) and the multipart `options` field, counted as decoded text",
            unit="bytes", minimum=1024),
        1024 * 1024,
    )
    max_json_elements: int = setting(
        Var("MAX_JSON_ELEMENTS", "most brackets and commas (an upper bound on the values) in "
            "one JSON document, counted before it is parsed; more is a 400 json_too_complex",
            unit="elements", minimum=100),
        20_000,
    )
