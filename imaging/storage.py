"""Image files under MEDIA_ROOT, shared by the API and the workers (no Django).

Layout::

    <root>/uploads/<image_id><ext>     uploaded bytes, as received
    <root>/uploads/<image_id>.json     upload metadata
    <root>/samples/<slug><ext>         the built-in sample set (imaging.samples)
    <root>/outputs/<job_id>/<index:04d>-<image_id><ext>   results
    <root>/outputs/<job_id>/<index:04d>-<image_id>.thumb.webp   their previews
    <root>/outputs/<job_id>/.tenant    the tenant whose storage usage the outputs count in

Image ids are ``img_<32 hex>`` (uploads) or ``sample-<slug>``; ids and keys are checked
against those shapes before any path is built, and a client-supplied file name is kept for
display only, never used in a path.

Bytes are counted here, at the storage interface, never by walking the tree: a write says
how many bytes it added (:meth:`Storage.write_key`), a removal what it freed and whose they
were (:class:`Freed`), so a tenant's usage can be kept in step whatever holds the bytes. A
write that would leave the filesystem with less free space than ``min_free_bytes`` is refused
with :class:`InsufficientStorage` before anything is written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from imaging.codecs import EXTENSIONS, OUTPUT_FORMATS, ImageInfo
from imaging.samples import SAMPLES, SampleSpec, render_sample

__all__ = ["Freed", "InsufficientStorage", "Storage", "ensure_samples", "is_image_id",
           "write_atomic"]

_UPLOAD_ID = re.compile(r"img_[0-9a-f]{32}")
_SAMPLE_ID = re.compile(r"sample-([a-z0-9][a-z0-9-]{0,63})")
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_TENANT = re.compile(r"[A-Za-z0-9_-]{1,64}")
OUTPUTS_TENANT = ".tenant"  # in a job's output directory: whose usage its files count in
_MAX_NAME_CHARS = 200
_SAMPLES_BY_SLUG = {spec.slug: spec for spec in SAMPLES}


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; API and workers may run as other users
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class InsufficientStorage(OSError):
    """The write would leave the filesystem below its free-space floor (MIN_FREE_DISK_MB):
    refused before anything is written. Transient: retention and deletes free space."""

    code = "insufficient_storage"

    def __init__(self, *, free_bytes: int, needed_bytes: int, floor_bytes: int) -> None:
        message = (f"the image storage has {free_bytes} bytes free; writing {needed_bytes} "
                   f"more would leave less than its floor of {floor_bytes} bytes")
        super().__init__(errno.ENOSPC, message)
        self.free_bytes = free_bytes
        self.needed_bytes = needed_bytes
        self.floor_bytes = floor_bytes

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple:  # pickled across a process pool with its fields
        return (_insufficient, (self.free_bytes, self.needed_bytes, self.floor_bytes))


def _insufficient(free: int, needed: int, floor: int) -> InsufficientStorage:
    return InsufficientStorage(free_bytes=free, needed_bytes=needed, floor_bytes=floor)


@dataclass(frozen=True)
class Freed:
    """What a removal gave back: ``bytes`` of the tenant ``tenant`` (None: they were never
    counted in anyone's usage, e.g. written before usage was counted), in ``files`` files."""

    tenant: str | None
    bytes: int
    files: int


def sample_path(directory: Path, spec: SampleSpec) -> Path:
    return Path(directory) / spec.filename


def ensure_samples(directory: Path) -> list[Path]:
    """Write any missing sample into ``directory`` and return all sample paths, in order.

    Missing files only, each written atomically, so concurrent callers in several processes
    are safe: every writer produces the same bytes."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for spec in SAMPLES:
        path = sample_path(directory, spec)
        if not path.is_file():
            write_atomic(path, render_sample(spec))
        paths.append(path)
    return paths


def is_image_id(value: object) -> bool:
    """True for a well-formed upload or sample id (whether or not it exists)."""
    return isinstance(value, str) and bool(
        _UPLOAD_ID.fullmatch(value) or _SAMPLE_ID.fullmatch(value)
    )


def _display_name(name: str | None) -> str | None:
    """The last path component, printable characters only, at most 200 of them."""
    if not name:
        return None
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip()
    return cleaned[:_MAX_NAME_CHARS] or None


def _iso(timestamp: float | None = None) -> str:
    moment = datetime.now(UTC) if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="seconds")


class Storage:
    """Uploads, samples and outputs under one root directory. ``min_free_bytes``: the
    free-space floor that writes of uploads and outputs keep (0: none)."""

    def __init__(self, root: str | Path, *, min_free_bytes: int = 0) -> None:
        self.root = Path(root)
        self.uploads_dir = self.root / "uploads"
        self.samples_dir = self.root / "samples"
        self.min_free_bytes = max(0, int(min_free_bytes))

    # --- free space --------------------------------------------------------------------

    def free_bytes(self) -> int:
        """Bytes free for this process on the filesystem holding the root (statvfs)."""
        path = self.root
        while not path.exists() and path != path.parent:
            path = path.parent
        stat = os.statvfs(path)
        return stat.f_bavail * stat.f_frsize

    def check_free(self, needed_bytes: int) -> None:
        """Raise :class:`InsufficientStorage` if writing ``needed_bytes`` would leave less
        than ``min_free_bytes`` free (never with no floor)."""
        if self.min_free_bytes <= 0:
            return
        free = self.free_bytes()
        if free - needed_bytes < self.min_free_bytes:
            raise InsufficientStorage(free_bytes=free, needed_bytes=needed_bytes,
                                      floor_bytes=self.min_free_bytes)

    # --- images ----------------------------------------------------------------------

    def save_upload(
        self, data: bytes, info: ImageInfo, original_name: str | None, owner: str | None = None,
        *, counted: bool = False,
    ) -> str:
        """Store an inspected upload; returns its new id ``img_<32 hex>``. ``owner``: the
        tenant it belongs to (kept in its metadata); ``counted``: its bytes are counted in
        the owner's storage usage (its removal then gives them back, :meth:`remove_upload`).
        Raises :class:`InsufficientStorage` below the free-space floor."""
        self.check_free(len(data))
        image_id = f"img_{secrets.token_hex(16)}"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.uploads_dir / f"{image_id}{EXTENSIONS[info.format]}", data)
        meta = {
            "id": image_id,
            "format": info.format,
            "width": info.width,
            "height": info.height,
            "bytes": len(data),
            "original_name": _display_name(original_name),
            "created_at": _iso(),
            "owner": owner,
        }
        if counted and owner:
            meta["counted"] = True
        # Metadata last: an id whose metadata exists always has its bytes.
        write_atomic(self.uploads_dir / f"{image_id}.json", json.dumps(meta).encode())
        return image_id

    def image_meta(self, image_id: str) -> dict | None:
        """Metadata of an upload or sample, or None if the id is malformed or unknown."""
        if not isinstance(image_id, str):
            return None
        if _UPLOAD_ID.fullmatch(image_id):
            try:
                meta = json.loads((self.uploads_dir / f"{image_id}.json").read_text("utf-8"))
            except (FileNotFoundError, NotADirectoryError, ValueError):
                return None
            return meta if isinstance(meta, dict) else None
        match = _SAMPLE_ID.fullmatch(image_id)
        spec = _SAMPLES_BY_SLUG.get(match.group(1)) if match else None
        if spec is None:
            return None
        return self._sample_meta(image_id, spec)

    def _sample_meta(self, image_id: str, spec: SampleSpec) -> dict:
        ensure_samples(self.samples_dir)
        stat = (self.samples_dir / spec.filename).stat()
        return {
            "id": image_id,
            "format": spec.format,
            "width": spec.width,
            "height": spec.height,
            "bytes": stat.st_size,
            "original_name": spec.filename,
            "created_at": _iso(stat.st_mtime),
        }

    def image_path(self, image_id: str) -> Path:
        """Path of an image's bytes; KeyError if the id is malformed or unknown."""
        meta = self.image_meta(image_id)
        if meta is None:
            raise KeyError(image_id)
        if image_id.startswith("sample-"):
            path = self.samples_dir / _SAMPLES_BY_SLUG[image_id.removeprefix("sample-")].filename
        else:
            ext = EXTENSIONS.get(meta.get("format", ""))
            if ext is None:
                raise KeyError(image_id)
            path = self.uploads_dir / f"{image_id}{ext}"
        if not path.is_file():
            raise KeyError(image_id)
        return path

    def delete_upload(self, image_id: str) -> bool:
        """Remove an upload (see :meth:`remove_upload`); False if there was none."""
        return self.remove_upload(image_id) is not None

    def remove_upload(self, image_id: str) -> Freed | None:
        """Remove an upload, its metadata first (the id is then unknown, never half there);
        what it freed, or None if there was none. Samples are not uploads."""
        if not isinstance(image_id, str) or not _UPLOAD_ID.fullmatch(image_id):
            return None
        meta = self.image_meta(image_id)
        if meta is None:
            return None
        (self.uploads_dir / f"{image_id}.json").unlink(missing_ok=True)
        ext = EXTENSIONS.get(meta.get("format", ""))
        if ext is not None:
            (self.uploads_dir / f"{image_id}{ext}").unlink(missing_ok=True)
        owner = meta.get("owner")
        counted = bool(meta.get("counted")) and isinstance(owner, str)
        size = meta.get("bytes")
        return Freed(tenant=owner if counted else None,
                     bytes=size if isinstance(size, int) and size > 0 else 0, files=1)

    def delete_outputs(self, job_id: str) -> int:
        """Remove a job's output directory; the number of files removed."""
        return self.remove_outputs(job_id).files

    def remove_outputs(self, job_id: str) -> Freed:
        """Remove a job's output directory (outputs and thumbnails); what it freed, and the
        tenant its outputs counted in (:meth:`mark_outputs`)."""
        directory = self._outputs_dir(job_id)
        if not directory.is_dir() or directory.is_symlink():
            return Freed(tenant=None, bytes=0, files=0)
        tenant = self.outputs_tenant(job_id)
        removed = freed = 0
        for path in directory.iterdir():
            if path.name == OUTPUTS_TENANT:
                continue
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    freed += path.stat().st_size
            if path.is_file() or path.is_symlink():
                path.unlink(missing_ok=True)
                removed += 1
        shutil.rmtree(directory, ignore_errors=True)
        return Freed(tenant=tenant, bytes=freed if tenant else 0, files=removed)

    def mark_outputs(self, job_id: str, tenant: str) -> None:
        """Record, once, that the outputs of ``job_id`` count in ``tenant``'s usage (written
        before the first output, read when they are removed)."""
        if not _TENANT.fullmatch(tenant):
            raise ValueError(f"malformed tenant id {tenant!r}")
        directory = self._outputs_dir(job_id)
        marker = directory / OUTPUTS_TENANT
        if not marker.is_file():
            directory.mkdir(parents=True, exist_ok=True)
            write_atomic(marker, tenant.encode())

    def outputs_tenant(self, job_id: str) -> str | None:
        """The tenant the outputs of ``job_id`` count in, or None (not marked)."""
        try:
            text = (self._outputs_dir(job_id) / OUTPUTS_TENANT).read_text("utf-8").strip()
        except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
            return None
        return text if _TENANT.fullmatch(text) else None

    def _outputs_dir(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise ValueError(f"malformed job id {job_id!r}")
        return self.root / "outputs" / job_id

    def sample_ids(self) -> list[str]:
        """Ids of the built-in samples (written on first use)."""
        return [f"sample-{path.stem}" for path in ensure_samples(self.samples_dir)]

    # --- keys ------------------------------------------------------------------------

    def output_key(self, job_id: str, index: int, image_id: str, fmt: str) -> str:
        """Storage key of a job's result: ``outputs/<job_id>/<index:04d>-<image_id><ext>``."""
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise ValueError(f"malformed job id {job_id!r}")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"index must be a non-negative integer, not {index!r}")
        if not is_image_id(image_id):
            raise ValueError(f"malformed image id {image_id!r}")
        if fmt not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output format {fmt!r}")
        return f"outputs/{job_id}/{index:04d}-{image_id}{EXTENSIONS[fmt]}"

    def thumbnail_key(self, job_id: str, index: int, image_id: str) -> str:
        """Storage key of a result's preview: ``outputs/<job_id>/<index:04d>-<image_id>
        .thumb.webp`` (beside the output; checked like :meth:`output_key`)."""
        key = self.output_key(job_id, index, image_id, "webp")
        return key.removesuffix(".webp") + ".thumb.webp"

    def path_for_key(self, key: str) -> Path:
        """Absolute path of a relative key; ValueError for anything that could leave the root
        (absolute paths, ``..``, empty or odd components, backslashes, symlinks out)."""
        if not isinstance(key, str) or not key:
            raise ValueError("empty storage key")
        if "\x00" in key or "\\" in key or key.startswith("/"):
            raise ValueError(f"invalid storage key {key!r}")
        if any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"invalid storage key {key!r}")
        root = self.root.resolve()
        path = (root / key).resolve()
        if path == root or not path.is_relative_to(root):
            raise ValueError(f"storage key {key!r} leaves the storage root")
        return path

    def write_key(self, key: str, data: bytes) -> int:
        """Write ``data`` at ``key`` atomically, creating directories as needed; the bytes it
        added to the storage (its size less that of the file it replaced, so a task run
        twice counts once). Raises :class:`InsufficientStorage` below the free-space floor."""
        path = self.path_for_key(key)
        self.check_free(len(data))
        try:
            replaced = path.stat().st_size
        except FileNotFoundError:
            replaced = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
        return len(data) - replaced

    def read_key(self, key: str) -> bytes:
        """Bytes stored at ``key`` (FileNotFoundError if absent)."""
        return self.path_for_key(key).read_bytes()
