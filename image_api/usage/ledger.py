"""Where each tenant's storage usage is kept, behind one interface (:class:`UsageLedger`):

- :class:`RedisLedger` when REDIS_URL is set: ``{p}:usage`` (distributed/usage.py), which the
  workers add their outputs to as well;
- :class:`LocalLedger` without Redis: a ``TenantUsage`` row per tenant in the database.

Both check a reservation against the quota in the same step as they add it (a Lua script; a
conditional UPDATE), so API processes uploading at once cannot pass a quota together, and
neither goes below 0 on a release. The figures are the bytes the storage reported when it
wrote and removed them (imaging/storage.py), never a walk of the files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from django.db.models import F
from django.db.models.functions import Greatest

from distributed.errors import RedisUnavailable
from distributed.usage import StorageUsage
from image_api.broker import broker, queue_config
from image_api.models import TenantUsage
from image_api.usage.errors import StorageQuotaExceeded, UsageUnavailable

T = TypeVar("T")


class UsageLedger(Protocol):
    def used(self, tenant: str) -> int:
        """Bytes ``tenant`` keeps (0 if never counted)."""
        ...

    def reserve(self, tenant: str, nbytes: int, *, quota_bytes: int) -> int:
        """Add ``nbytes`` (usage after) unless that takes ``tenant`` past ``quota_bytes``
        (0: no quota): then raise :class:`StorageQuotaExceeded`, nothing added."""
        ...

    def charge(self, tenant: str, nbytes: int) -> int:
        """Add ``nbytes`` whatever the quota (outputs already written); usage after."""
        ...

    def release(self, tenant: str, nbytes: int) -> int:
        """Give back ``nbytes``, never below 0; usage after."""
        ...


class LocalLedger:
    """The database's figures (no Redis)."""

    def used(self, tenant: str) -> int:
        found = TenantUsage.objects.filter(pk=tenant).values_list("used_bytes", flat=True)
        return int(found.first() or 0)

    def reserve(self, tenant: str, nbytes: int, *, quota_bytes: int) -> int:
        TenantUsage.objects.bulk_create([TenantUsage(tenant=tenant)], ignore_conflicts=True)
        rows = TenantUsage.objects.filter(pk=tenant)
        if quota_bytes > 0:
            rows = rows.filter(used_bytes__lte=quota_bytes - nbytes)
        # One UPDATE ... WHERE used_bytes <= quota - n: the check and the add are one
        # statement, atomic against every other process on the same database.
        if not rows.update(used_bytes=F("used_bytes") + nbytes):
            raise StorageQuotaExceeded(tenant=tenant, used_bytes=self.used(tenant),
                                       quota_bytes=quota_bytes, requested_bytes=nbytes)
        return self.used(tenant)

    def charge(self, tenant: str, nbytes: int) -> int:
        return self.reserve(tenant, nbytes, quota_bytes=0)

    def release(self, tenant: str, nbytes: int) -> int:
        TenantUsage.objects.filter(pk=tenant).update(
            used_bytes=Greatest(F("used_bytes") - nbytes, 0))
        return self.used(tenant)


class RedisLedger:
    """The figures in Redis (REDIS_URL set), shared with the workers."""

    def used(self, tenant: str) -> int:
        return _reach(lambda usage: usage.used(tenant))

    def reserve(self, tenant: str, nbytes: int, *, quota_bytes: int) -> int:
        answer = _reach(lambda usage: usage.reserve(tenant, nbytes, quota_bytes=quota_bytes))
        if not answer.reserved:
            raise StorageQuotaExceeded(tenant=tenant, used_bytes=answer.used_bytes,
                                       quota_bytes=quota_bytes, requested_bytes=nbytes)
        return answer.used_bytes

    def charge(self, tenant: str, nbytes: int) -> int:
        return _reach(lambda usage: usage.charge(tenant, nbytes))

    def release(self, tenant: str, nbytes: int) -> int:
        return _reach(lambda usage: usage.release(tenant, nbytes))


def _reach(call: Callable[[StorageUsage], T]) -> T:
    try:
        return call(broker().usage)
    except RedisUnavailable as exc:
        raise UsageUnavailable(str(exc)) from exc


def ledger() -> UsageLedger:
    """The ledger of the current settings: Redis when REDIS_URL is set, else the database."""
    return RedisLedger() if queue_config().redis_url else LocalLedger()
