"""Local files: the images named on the command line (folders walked), their hashes, the
upload chunks, and outputs written whole or not at all."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
# Temporary files in the output folder start with this: never taken for an input or output.
TEMP_PREFIX = ".imgproc-"


@dataclass(frozen=True)
class LocalImage:
    path: Path
    name: str  # the name the server keeps (the file's own name)
    size: int
    sha256: str


@dataclass
class Walk:
    images: list[Path]
    skipped: list[Path]  # files of a walked folder that are not images (by extension)


def walk(paths: Iterable[Path], exclude: Path | None = None) -> Walk:
    """The images among ``paths``: a file named is taken as it is (the server judges it by
    content); a folder is walked (sorted, symlinked folders not followed) for files with an
    image extension, the others listed in ``skipped``. ``exclude`` (the output folder) and
    the CLI's temporary files are left out. Each file is taken once."""
    seen: set[Path] = set()
    found = Walk(images=[], skipped=[])
    excluded = exclude.resolve() if exclude is not None else None

    def add(path: Path) -> None:
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            found.images.append(path)

    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                here = Path(root)
                dirs[:] = sorted(d for d in dirs if excluded is None
                                 or (here / d).resolve() != excluded)
                for name in sorted(files):
                    file = here / name
                    if name.startswith(TEMP_PREFIX) or not file.is_file():
                        continue
                    if file.suffix.lower() in IMAGE_EXTENSIONS:
                        add(file)
                    else:
                        found.skipped.append(file)
        else:
            add(path)
    return found


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def chunks(images: list[LocalImage], max_files: int, max_bytes: int
           ) -> Iterator[list[LocalImage]]:
    """Consecutive groups of at most ``max_files`` files and ``max_bytes`` bytes (a file
    larger than ``max_bytes`` goes alone)."""
    group: list[LocalImage] = []
    size = 0
    for image in images:
        if group and (len(group) >= max_files or size + image.size > max_bytes):
            yield group
            group, size = [], 0
        group.append(image)
        size += image.size
    if group:
        yield group


_UNSAFE = re.compile(r'[\\/:*?"<>|]')


def safe_name(name: str | None, fallback: str) -> str:
    """A file name from the server made safe to create here: its last path component, no
    control or reserved characters, not hidden, bounded; ``fallback`` when nothing is left."""
    text = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _UNSAFE.sub("_", text).strip().lstrip(".")
    if not text or text in {".", ".."}:
        return fallback
    if len(text) > 200:
        stem, suffix = os.path.splitext(text)
        text = stem[: 200 - len(suffix[:20])] + suffix[:20]
    return text


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem (2).ext``, ``stem (3).ext``… if already ``taken`` (case-blind, as
    on macOS and Windows); adds the result to ``taken``."""
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    taken.add(candidate.casefold())
    return candidate


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``final``, renamed over it once the block ends normally. On any
    exception (Ctrl+C included) the temporary file is removed: ``final`` is either the old
    file or the whole new one, never half of it."""
    fd, temp = tempfile.mkstemp(dir=final.parent, prefix=TEMP_PREFIX, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes it 0600: as any new file instead
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
