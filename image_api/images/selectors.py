"""Reads: the storage, the image list, an image's file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from image_api.errors import ApplicationError
from image_api.tenancy import Caller
from image_api.usage.services import min_free_bytes
from imaging.storage import Storage


def get_storage() -> Storage:
    """The shared image storage under MEDIA_ROOT, keeping MIN_FREE_DISK_MB free (cheap to
    build; settings may change in tests)."""
    return Storage(settings.MEDIA_ROOT, min_free_bytes=min_free_bytes())


def _upload_ids(storage: Storage) -> list[str]:
    if not storage.uploads_dir.is_dir():
        return []
    return sorted(path.stem for path in storage.uploads_dir.glob("img_*.json"))


def image_list(viewer: Caller) -> list[dict[str, Any]]:
    """Metadata of the uploads ``viewer`` may see (newest first), then the sample images."""
    storage = get_storage()
    uploads = [meta for meta in map(storage.image_meta, _upload_ids(storage))
               if meta and viewer.may_see(meta.get("owner"))]
    uploads.sort(key=lambda meta: meta.get("created_at") or "", reverse=True)
    samples = [meta for meta in map(storage.image_meta, storage.sample_ids()) if meta]
    return [{**meta, "kind": "upload"} for meta in uploads] + [
        {**meta, "kind": "sample"} for meta in samples
    ]


def visible_meta(image_id: str, viewer: Caller) -> dict[str, Any] | None:
    """An image's metadata if it exists for ``viewer`` (samples exist for everyone; another
    tenant's upload does not)."""
    meta = get_storage().image_meta(image_id)  # samples are generated on first use
    if meta is None:
        return None
    if image_id.startswith("sample-") or viewer.may_see(meta.get("owner")):
        return meta
    return None


def image_file(image_id: str, viewer: Caller) -> tuple[Path, dict[str, Any]]:
    """Path and metadata of a stored image; 404 ApplicationError if unknown (or another
    tenant's)."""
    storage = get_storage()
    meta = visible_meta(image_id, viewer)
    if meta is None:
        raise ApplicationError(
            f"Unknown image id {image_id!r}.", status=404, code="image_not_found",
            extra={"image": image_id},
        )
    return storage.image_path(image_id), meta
