"""Who is asking: the tenant that owns what a request creates, and whether it may use the
admin actions (requeue or discard dead letters, drain workers, see hostnames and pids).

Every view asks these two functions, never the request's headers. The authentication
(API keys) that sets ``request.auth`` lives in image_api/auth/; with AUTH_REQUIRED off, a
request without a key is the one anonymous tenant, with the admin rights of a local user.
"""

from __future__ import annotations

from typing import Any

ANONYMOUS = "anonymous"


def tenant_of(request: Any) -> str:
    """The tenant id of the request's caller (``ANONYMOUS`` without a key)."""
    return ANONYMOUS


def is_admin(request: Any) -> bool:
    """Whether the caller may use the admin actions."""
    return True


def console_login_required(view: Any) -> Any:
    """Decorator for the console's HTML views: with AUTH_REQUIRED on, a caller without a
    signed-in key is sent to the sign-in page. (Stub: every caller passes.)"""
    return view
