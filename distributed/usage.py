"""Each tenant's storage usage ({p}:usage, keys.py): the bytes it keeps in the image storage
(uploads, outputs, thumbnails), shared by every API process and worker.

- The API :meth:`~StorageUsage.reserve`\\ s an upload's bytes before writing them, checked
  against the tenant's quota in the same script (usage_reserve.lua), and releases them if the
  write fails.
- A worker :meth:`~StorageUsage.charge`\\ s the bytes of the outputs it wrote, never refused
  (a job is not stopped halfway by its own outputs).
- Deleting or expiring an upload or a job's outputs :meth:`~StorageUsage.release`\\ s what the
  storage says it freed (usage_release.lua: never below 0).

The figures are bytes as the storage counted them at write time (``imaging.storage``), not a
walk of the files: the same calls hold for an object store.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from distributed.config import QueueConfig
from distributed.errors import translate_redis_errors
from distributed.scripts import Scripts


@dataclass(frozen=True)
class Reservation:
    """The answer of :meth:`StorageUsage.reserve`: whether the bytes were added, and the
    tenant's usage after (or, refused, as it stands)."""

    reserved: bool
    used_bytes: int


def _int(value: bytes | str | int | None) -> int:
    if value is None:
        return 0
    return int(value.decode() if isinstance(value, bytes) else value)


class StorageUsage:
    """The usage counters of one :class:`QueueConfig`'s Redis."""

    def __init__(self, client: redis.Redis, config: QueueConfig, scripts: Scripts) -> None:
        self.client = client
        self.key = config.keys.usage()
        self.scripts = scripts

    def used(self, tenant: str) -> int:
        """Bytes ``tenant`` keeps (0 for a tenant never counted)."""
        with translate_redis_errors():
            return _int(self.client.hget(self.key, tenant))

    def reserve(self, tenant: str, nbytes: int, *, quota_bytes: int) -> Reservation:
        """Add ``nbytes`` unless that would take ``tenant`` past ``quota_bytes`` (0: no
        quota, always added). Atomic across processes."""
        _check(tenant, nbytes)
        with translate_redis_errors():
            ok, used = self.scripts["usage_reserve"](
                keys=[self.key], args=[tenant, nbytes, max(0, quota_bytes)])
        return Reservation(reserved=bool(int(ok)), used_bytes=_int(used))

    def charge(self, tenant: str, nbytes: int) -> int:
        """Add ``nbytes`` whatever the quota (outputs already written); usage after."""
        return self.reserve(tenant, nbytes, quota_bytes=0).used_bytes

    def release(self, tenant: str, nbytes: int) -> int:
        """Give back ``nbytes`` (at most what is counted); usage after."""
        _check(tenant, nbytes)
        with translate_redis_errors():
            return _int(self.scripts["usage_release"](keys=[self.key], args=[tenant, nbytes]))


def _check(tenant: str, nbytes: int) -> None:
    if not isinstance(tenant, str) or not tenant:
        raise ValueError(f"{tenant!r} is not a tenant id")
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise ValueError(f"bytes must be a non-negative integer, not {nbytes!r}")
