"""API keys: creation, DRF authentication and the permission that requires a key.

A key is ``imgp_`` + 43 URL-safe characters (256 random bits). The database keeps its
SHA-256 digest, looked up by equality on a unique index: the secret never needs comparing, and
a leaked table does not let anyone authenticate. Clients send ``Authorization: Bearer <key>``
or ``X-API-Key: <key>``.

- A key that is sent and unknown or revoked: 401 ``invalid_api_key``, whether or not keys are
  required (a typo must not silently become the anonymous tenant).
- No key with AUTH_REQUIRED on: 401 ``authentication_required`` with ``WWW-Authenticate``.
- No key with AUTH_REQUIRED off: ``request.auth`` is None, the anonymous tenant
  (image_api/tenancy.py).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from image_api.models import ApiKey

KEY_PREFIX = "imgp_"
_KEY_SHAPE = re.compile(r"imgp_[A-Za-z0-9_-]{43}")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(name: str, *, admin: bool = False) -> tuple[ApiKey, str]:
    """A new key named ``name``; returns the record and the secret (shown once, never stored)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        id=f"key_{secrets.token_hex(8)}", name=name, prefix=secret[: len(KEY_PREFIX) + 6],
        digest=digest(secret), admin=admin, created_at=timezone.now(),
    )
    return key, secret


def key_from_headers(meta: Any) -> str | None:
    """The key a request presents (``Authorization: Bearer`` first, then ``X-API-Key``), or
    None. ``meta`` is ``request.META``."""
    header = meta.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    value = meta.get("HTTP_X_API_KEY", "").strip()
    return value or None


def key_for_secret(secret: str) -> ApiKey | None:
    """The live key with this secret, or None (unknown, malformed or revoked)."""
    if not _KEY_SHAPE.fullmatch(secret):
        return None
    key = ApiKey.objects.filter(digest=digest(secret)).first()
    if key is None or key.revoked_at is not None:
        return None
    return key


class ApiKeyAuthentication(BaseAuthentication):
    """Sets ``request.auth`` to the caller's :class:`ApiKey` (``request.user`` stays None)."""

    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        secret = key_from_headers(request.META)
        if secret is None:
            return None
        key = key_for_secret(secret)
        if key is None:
            raise exceptions.AuthenticationFailed(
                "The API key is not valid (unknown, malformed or revoked).",
                code="invalid_api_key",
            )
        return (None, key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyRequired(BasePermission):
    """With AUTH_REQUIRED on, a request without a valid key gets a 401."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not settings.AUTH_REQUIRED or isinstance(request.auth, ApiKey):
            return True
        raise exceptions.NotAuthenticated(
            "This server requires an API key: send `Authorization: Bearer <key>` or "
            "`X-API-Key: <key>` (an operator creates one with `manage.py createapikey NAME`).",
            code="authentication_required",
        )


class ApiKeySchema(OpenApiAuthenticationExtension):
    """The key in the OpenAPI schema (Swagger UI's Authorize button)."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py createapikey`, as `Authorization: "
            "Bearer <key>` (or `X-API-Key: <key>`). Required when the server runs with "
            "AUTH_REQUIRED on.",
        }
