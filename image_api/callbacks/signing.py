"""Each tenant's callback secret, and the check of a submitted ``callback_url``."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

from common.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, CallbackRefused, check_url
from image_api.errors import ApplicationError

SCHEME = (f"{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256(secret, "
          f"{TIMESTAMP_HEADER} + \".\" + raw body)>")


def tenant_secret(tenant: str) -> str:
    """The key ``tenant``'s callbacks are signed with: HMAC-SHA256(CALLBACK_SECRET, tenant),
    so each tenant can check its own and cannot sign as another."""
    key = str(settings.CALLBACK_SECRET).encode()
    return hmac.new(key, f"imgproc-callback:{tenant}".encode(), hashlib.sha256).hexdigest()


def checked_callback_url(url: str | None) -> str:
    """``url`` if it may be used ('' for none); else a 400 ``invalid_callback_url`` saying why
    (not http(s), credentials in it, a host that does not resolve or resolves to a private
    address while CALLBACK_ALLOW_PRIVATE is off)."""
    if not url:
        return ""
    try:
        check_url(url, allow_private=bool(settings.CALLBACK_ALLOW_PRIVATE))
    except CallbackRefused as exc:
        raise ApplicationError(f"callback_url: {exc}.", status=400, code="invalid_callback_url",
                               extra={"field": "callback_url"}) from exc
    return url
