"""Who is asking: the tenant that owns what a request creates, and whether it may use the
admin actions (requeue or discard dead letters, see hostnames and pids).

Every view asks these functions, never the request's headers. The API key that DRF puts in
``request.auth`` (image_api/auth.py) is the tenant; with AUTH_REQUIRED off, a request without
a key is the one anonymous tenant, with the admin rights of a local user.

Objects of another tenant are answered 404, as if they did not exist (``owns``): a 403 would
confirm that an id is in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """Who a service acts for: views build it once (:func:`caller`) and pass it down."""

    tenant: str = ANONYMOUS
    admin: bool = True

    def may_see(self, owner: str | None) -> bool:
        """Whether an object owned by ``owner`` exists for this caller (None: made before
        tenants, the anonymous tenant's)."""
        return self.admin or (owner or ANONYMOUS) == self.tenant

    @property
    def scope(self) -> str | None:
        """The tenant whose objects a list shows: None (everyone's) for an admin."""
        return None if self.admin else self.tenant


def _key(request: Any) -> Any:
    from image_api.models import ApiKey  # the models load after the apps

    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, ApiKey) else None


def tenant_of(request: Any) -> str:
    """The tenant id of the request's caller (``ANONYMOUS`` without a key)."""
    key = _key(request)
    return key.id if key is not None else ANONYMOUS


def is_admin(request: Any) -> bool:
    """Whether the caller may use the admin actions and see every tenant's objects."""
    key = _key(request)
    if key is not None:
        return bool(key.admin)
    return not settings.AUTH_REQUIRED


def caller(request: Any) -> Caller:
    """The request's caller, for the services."""
    return Caller(tenant=tenant_of(request), admin=is_admin(request))


def caller_from_headers(request: Any) -> Caller:
    """The caller of a plain Django view (outside DRF), by the same rules as the API:
    401 ``invalid_api_key`` for a bad key, 401 ``authentication_required`` for none when keys
    are required (as an ApplicationError)."""
    from image_api.auth import key_for_secret, key_from_headers
    from image_api.errors import ApplicationError

    secret = key_from_headers(request.META)
    if secret is None:
        if settings.AUTH_REQUIRED:
            raise ApplicationError(
                "This server requires an API key: send `Authorization: Bearer <key>`.",
                status=401, code="authentication_required",
                headers={"WWW-Authenticate": 'Bearer realm="api"'})
        return Caller()
    key = key_for_secret(secret)
    if key is None:
        raise ApplicationError("The API key is not valid (unknown, malformed or revoked).",
                               status=401, code="invalid_api_key",
                               headers={"WWW-Authenticate": 'Bearer realm="api"'})
    return Caller(tenant=key.id, admin=bool(key.admin))


def require_admin(request: Any, action: str) -> None:
    """Raise a 403 ``admin_required`` unless the caller may use the admin actions."""
    if is_admin(request):
        return
    from image_api.errors import ApplicationError

    raise ApplicationError(
        f"Only an admin key may {action}.", status=403, code="admin_required")
