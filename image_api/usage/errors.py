"""The domain errors of storage usage; image_api/errors.py maps them to statuses."""

from __future__ import annotations


class StorageQuotaExceeded(Exception):
    """Storing ``requested_bytes`` more would take the tenant past its quota, or the tenant is
    already at or over it (``requested_bytes`` 0): nothing was stored."""

    def __init__(self, *, tenant: str, used_bytes: int, quota_bytes: int,
                 requested_bytes: int) -> None:
        super().__init__(f"tenant {tenant} uses {used_bytes} of its {quota_bytes} bytes")
        self.tenant = tenant
        self.used_bytes = used_bytes
        self.quota_bytes = quota_bytes
        self.requested_bytes = requested_bytes


class UsageUnavailable(Exception):
    """The store of the usage figures (Redis, with REDIS_URL set) cannot be reached: an upload
    cannot be counted, so it is refused; retry when it is back."""
