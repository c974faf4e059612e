"""Writes: validating uploads (every file inspected before any is stored), storing them
(all or none, within the tenant's quota and the storage's free-space floor), deleting one."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from image_api.errors import ApplicationError
from image_api.images.selectors import get_storage, visible_meta
from image_api.tenancy import Caller
from image_api.usage.services import usage_give_back, usage_reserved
from imaging.codecs import ImageError, ImageInfo, inspect_image

logger = logging.getLogger(__name__)


def display_name(name: str | None, limit: int = 200) -> str:
    """A client file name made safe for messages: no control characters, bounded length."""
    text = "".join(ch for ch in (name or "") if unicodedata.category(ch)[0] != "C")
    return text.strip()[:limit] or "(unnamed)"


@dataclass(frozen=True)
class ValidatedUpload:
    """An uploaded file that passed `inspect_image`, not yet stored."""

    index: int
    name: str
    file: UploadedFile
    info: ImageInfo

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    @property
    def size(self) -> int:
        """Its bytes, as stored (and counted in the owner's usage)."""
        return self.file.size if self.file.size is not None else len(self.read())


def uploads_validate(*, files: Sequence[UploadedFile]) -> list[ValidatedUpload]:
    """Inspect every file; the first bad one raises an ApplicationError naming it."""
    max_bytes = int(settings.MAX_UPLOAD_BYTES)
    max_pixels = int(settings.MAX_IMAGE_PIXELS)
    validated = []
    for index, upload in enumerate(files):
        name = display_name(upload.name)
        where = {"file": {"index": index, "name": name}}
        if upload.size is not None and upload.size > max_bytes:
            raise ApplicationError(
                f"files[{index}] ({name!r}): the file is {upload.size} bytes; "
                f"the limit is {max_bytes} bytes.",
                status=413, code="file_too_large", extra=where,
            )
        upload.seek(0)
        try:
            info = inspect_image(upload.read(), max_bytes=max_bytes, max_pixels=max_pixels,
                                 max_jpeg_scans=int(settings.MAX_JPEG_SCANS))
        except ImageError as exc:
            raise ApplicationError(
                f"files[{index}] ({name!r}): {exc}", status=exc.status, code=exc.code, extra=where
            ) from exc
        validated.append(ValidatedUpload(index=index, name=name, file=upload, info=info))
    return validated


def uploads_store(*, uploads: Sequence[ValidatedUpload], owner: str) -> list[dict[str, Any]]:
    """Store validated uploads, owned by the tenant ``owner``; their metadata in order.

    All or none: before anything is written, their bytes must leave the storage above its
    free-space floor (InsufficientStorage, 507) and fit in the owner's quota (reserved at
    once, StorageQuotaExceeded, 413); a write that fails removes those already written and
    gives the reservation back."""
    if not uploads:
        return []
    storage = get_storage()
    total = sum(upload.size for upload in uploads)
    storage.check_free(total)
    stored: list[str] = []
    with usage_reserved(tenant=owner, nbytes=total):
        try:
            for upload in uploads:
                stored.append(storage.save_upload(upload.read(), upload.info, upload.name,
                                                  owner=owner, counted=True))
        except BaseException:
            for image_id in stored:
                storage.delete_upload(image_id)
            raise
    metas = []
    for image_id in stored:
        meta = storage.image_meta(image_id)
        metas.append(meta if meta is not None else {"id": image_id})
    return metas


def image_upload_batch(*, files: Sequence[UploadedFile], owner: str) -> list[dict[str, Any]]:
    """Validate all files, then store all of them (none if any is bad)."""
    if not files:
        raise ApplicationError(
            "No files: send one or more images as multipart/form-data under the field 'files'.",
            status=400, code="no_files",
        )
    return uploads_store(uploads=uploads_validate(files=files), owner=owner)


def image_delete(*, image_id: str, viewer: Caller) -> None:
    """Delete an upload: 404 for an unknown one or another tenant's, 409 for a sample. Jobs
    that still name it fail on it (image_not_found), outputs already made stay. Its bytes go
    back to its owner's usage."""
    if image_id.startswith("sample-") and visible_meta(image_id, viewer) is not None:
        raise ApplicationError(
            f"{image_id} is a built-in sample; only uploads can be deleted.", status=409,
            code="image_not_deletable", extra={"image": image_id})
    freed = get_storage().remove_upload(image_id) if visible_meta(image_id, viewer) else None
    if freed is None:
        raise ApplicationError(f"Unknown image id {image_id!r}.", status=404,
                               code="image_not_found", extra={"image": image_id})
    usage_give_back(freed)
