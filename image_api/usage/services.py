"""Writes of the usage figures: reserving an upload's bytes before it is stored, counting
the outputs a local job wrote, giving back what a delete or the retention sweep freed.

Uploads are refused (413) when they would take the tenant past TENANT_STORAGE_QUOTA_MB, and
a submission of any mode is refused while the tenant is at or over it. Outputs are counted
when written and never refused mid-job: a tenant can overshoot by one batch's outputs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from django.conf import settings

from common.storage_settings import MIB
from image_api.usage.errors import StorageQuotaExceeded, UsageUnavailable
from image_api.usage.ledger import ledger
from imaging.storage import Freed

logger = logging.getLogger(__name__)


def quota_bytes() -> int:
    """A tenant's storage quota in bytes (0: none)."""
    return int(settings.TENANT_STORAGE_QUOTA_MB) * MIB


def min_free_bytes() -> int:
    """The storage's free-space floor in bytes (0: none)."""
    return int(settings.MIN_FREE_DISK_MB) * MIB


def usage_check_not_full(*, tenant: str) -> None:
    """Refuse a submission (StorageQuotaExceeded) while ``tenant`` is at or over its quota.

    An unreachable ledger lets it through (logged): a batch without uploads stores only
    outputs, which are never refused."""
    quota = quota_bytes()
    if quota <= 0:
        return
    try:
        used = ledger().used(tenant)
    except UsageUnavailable:
        logger.warning("usage.unavailable", extra={"tenant": tenant, "check": "submission"})
        return
    if used >= quota:
        raise StorageQuotaExceeded(tenant=tenant, used_bytes=used, quota_bytes=quota,
                                   requested_bytes=0)


@contextlib.contextmanager
def usage_reserved(*, tenant: str, nbytes: int) -> Iterator[int]:
    """Reserve ``nbytes`` of ``tenant``'s quota for the writes in the block (StorageQuotaExceeded
    before any of them when they do not fit; UsageUnavailable when the ledger is out of
    reach); given back if the block raises. Yields the usage after the reservation."""
    if nbytes < 0:
        raise ValueError(f"cannot reserve {nbytes} bytes")
    book = ledger()
    used = book.reserve(tenant, nbytes, quota_bytes=quota_bytes())
    try:
        yield used
    except BaseException:
        with contextlib.suppress(UsageUnavailable):
            book.release(tenant, nbytes)
        raise


def usage_charge(*, tenant: str, nbytes: int) -> None:
    """Count ``nbytes`` written (a negative figure: replaced files shrank) in ``tenant``'s
    usage, whatever the quota. Best effort: a ledger out of reach loses the figure (logged),
    the job it belongs to is not failed for it."""
    if nbytes == 0:
        return
    book = ledger()
    try:
        if nbytes > 0:
            book.charge(tenant, nbytes)
        else:
            book.release(tenant, -nbytes)
    except UsageUnavailable:
        logger.warning("usage.charge_lost", extra={"tenant": tenant, "bytes": nbytes})


def usage_give_back(freed: Freed | None) -> None:
    """Give back what a removal freed to the tenant it was counted for (nothing for bytes
    never counted). Best effort, like :func:`usage_charge`: the files are gone either way."""
    if freed is None or freed.tenant is None or freed.bytes <= 0:
        return
    try:
        ledger().release(freed.tenant, freed.bytes)
    except UsageUnavailable:
        logger.warning("usage.release_lost", extra={"tenant": freed.tenant,
                                                    "bytes": freed.bytes})
