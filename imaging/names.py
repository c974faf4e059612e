"""File names for downloads: the user's original names, made safe and unique.

A client's file name is never used as a storage path (``imaging.storage`` keys are built from
ids); it only names the file a user downloads (zip entries, Content-Disposition).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

__all__ = ["download_name", "unique_names"]

_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_SPACES = re.compile(r"\s+")
_MAX_STEM = 100


def download_name(original: str | None, fallback: str, extension: str) -> str:
    """``original``'s base name with ``extension`` (".png") in place of its own: no directory,
    no control or reserved characters, no leading dot, at most 100 characters before the
    extension. ``fallback`` (e.g. the image id) when nothing usable is left."""
    base = (original or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stem = "".join(ch for ch in stem if unicodedata.category(ch)[0] != "C")
    stem = _SPACES.sub(" ", _UNSAFE.sub("_", stem)).strip(" ._")
    stem = stem[:_MAX_STEM].rstrip(" ._") or fallback
    return f"{stem}{extension}"


def unique_names(names: Sequence[str]) -> list[str]:
    """The same names, a repeat (case-insensitively) becoming ``name (2).ext``, ``(3)`` ..."""
    taken: set[str] = set()
    out = []
    for name in names:
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        candidate, number = name, 1
        while candidate.lower() in taken:
            number += 1
            candidate = f"{stem} ({number}){dot}{ext}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out
