"""Image files under MEDIA_ROOT, shared by the API and the workers (no Django).

Layout::

    <root>/uploads/<image_id><ext>     uploaded bytes, as received
    <root>/uploads/<image_id>.json     upload metadata
    <root>/samples/<slug><ext>         the built-in sample set (imaging.samples)
    <root>/outputs/<job_id>/<index:04d>-<image_id><ext>   results
    <root>/outputs/<job_id>/<index:04d>-<image_id>.thumb.webp   their previews

Image ids are ``img_<32 hex>`` (uploads) or ``sample-<slug>``; ids and keys are checked
against those shapes before any path is built, and a client-supplied file name is kept for
display only, never used in a path.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from imaging.codecs import EXTENSIONS, OUTPUT_FORMATS, ImageInfo
from imaging.samples import SAMPLES, SampleSpec, render_sample

__all__ = ["Storage", "ensure_samples", "is_image_id", "write_atomic"]

_UPLOAD_ID = re.compile(r"img_[0-9a-f]{32}")
_SAMPLE_ID = re.compile(r"sample-([a-z0-9][a-z0-9-]{0,63})")
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
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
    """Uploads, samples and outputs under one root directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.uploads_dir = self.root / "uploads"
        self.samples_dir = self.root / "samples"

    # --- images ----------------------------------------------------------------------

    def save_upload(
        self, data: bytes, info: ImageInfo, original_name: str | None, owner: str | None = None
    ) -> str:
        """Store an inspected upload; returns its new id ``img_<32 hex>``. ``owner``: the
        tenant it belongs to (kept in its metadata)."""
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
        """Remove an upload (its metadata first: the id is then unknown, never half there);
        False if there was none. Samples are not uploads."""
        if not isinstance(image_id, str) or not _UPLOAD_ID.fullmatch(image_id):
            return False
        meta = self.image_meta(image_id)
        if meta is None:
            return False
        (self.uploads_dir / f"{image_id}.json").unlink(missing_ok=True)
        ext = EXTENSIONS.get(meta.get("format", ""))
        if ext is not None:
            (self.uploads_dir / f"{image_id}{ext}").unlink(missing_ok=True)
        return True

    def delete_outputs(self, job_id: str) -> int:
        """Remove a job's output directory; the number of files removed."""
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise ValueError(f"malformed job id {job_id!r}")
        directory = self.root / "outputs" / job_id
        if not directory.is_dir() or directory.is_symlink():
            return 0
        removed = 0
        for path in directory.iterdir():
            if path.is_file() or path.is_symlink():
                path.unlink(missing_ok=True)
                removed += 1
        shutil.rmtree(directory, ignore_errors=True)
        return removed

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

    def write_key(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically, creating directories as needed."""
        path = self.path_for_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)

    def read_key(self, key: str) -> bytes:
        """Bytes stored at ``key`` (FileNotFoundError if absent)."""
        return self.path_for_key(key).read_bytes()
