"""What bounds the bytes kept in the image storage: each tenant's quota and the free-space
floor of the storage's filesystem. Nested into ``ApiSettings`` as one group
(:class:`StorageLimits`); a worker reads the floor alone (:data:`MIN_FREE_DISK`).
Re-exported by common/settings.py, where every other variable is declared."""

from __future__ import annotations

from dataclasses import dataclass

from common.env import Var

MIB = 1024 * 1024

MIN_FREE_DISK = Var(
    "MIN_FREE_DISK_MB",
    "free space the image storage's filesystem keeps (statvfs on MEDIA_ROOT): an upload that "
    "would leave less is refused (507 insufficient_storage), a worker's output write fails "
    "the task as transient (retried with backoff), a local-mode output fails its image; "
    "0 = no floor", unit="MiB", minimum=0,
)

STORAGE_VARS: dict[str, Var] = {
    "tenant_quota_mb": Var(
        "TENANT_STORAGE_QUOTA_MB",
        "bytes one tenant keeps in the image storage: its uploads, outputs and thumbnails, "
        "counted when written and given back on delete and expiry. An upload over it, or a "
        "submission while the tenant is at or over it, is refused (413 "
        "storage_quota_exceeded); outputs are never refused mid-job, so a tenant can "
        "overshoot by one batch's outputs. 0 = no quota", unit="MiB", minimum=0,
    ),
    "min_free_disk_mb": MIN_FREE_DISK,
}


@dataclass(frozen=True)
class StorageLimits:
    """The API's storage bounds. The default quota, 1 GiB, is 40 uploads of the largest size
    (MAX_UPLOAD_BYTES) or about 500 photos of 1 MB with their outputs: ample for the
    retention period's work, and 5 % of the 20 GiB media volume of deploy/k8s, so no one
    tenant can fill it. The 512 MiB floor leaves room for the database, logs and the writes
    in flight when it is reached."""

    tenant_quota_mb: int = 1024
    min_free_disk_mb: int = 512

    @property
    def quota_bytes(self) -> int:
        """0: no quota."""
        return self.tenant_quota_mb * MIB

    @property
    def min_free_bytes(self) -> int:
        """0: no floor."""
        return self.min_free_disk_mb * MIB
