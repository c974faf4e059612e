"""Offset/limit pages of two lists merged newest first, each read by rank only.

A source is sorted newest first by a unique key (submission time in microseconds, then id)
and answers ``count()`` and ``keys(start, stop)`` (the keys at ranks [start, stop)). The page
at ``offset`` of the merged list takes ``i`` entries of the first source and ``offset - i``
of the second before it; ``i`` is found by binary search with one key of each source per
step (O(log offset) reads of one entry), then the page reads ``limit`` keys of each. So a
page costs O(limit + log offset) whatever the sizes of the sources.
"""

from __future__ import annotations

from typing import Protocol

# (microseconds since the epoch, id): unique, newest = largest.
Key = tuple[int, str]


class Source(Protocol):
    def count(self) -> int: ...

    def keys(self, start: int, stop: int) -> list[Key]: ...


def _one(source: Source, rank: int) -> Key:
    found = source.keys(rank, rank + 1)
    if not found:
        raise IndexError(rank)  # the source shrank while it was read
    return found[0]


def split(a: Source, b: Source, offset: int, a_count: int, b_count: int) -> int:
    """How many of the merged list's first ``offset`` entries come from ``a``."""
    lo, hi = max(0, offset - b_count), min(offset, a_count)
    while lo < hi:
        i = (lo + hi) // 2
        # Too few from a when a's next entry is newer than the last one taken from b.
        if _one(a, i) > _one(b, offset - i - 1):
            lo = i + 1
        else:
            hi = i
    return lo


def merged_page(
    a: Source, b: Source, *, offset: int, limit: int
) -> tuple[int, list[tuple[int, Key]]]:
    """(total, the page): each entry is (0 for a or 1 for b, its key), newest first."""
    a_count, b_count = a.count(), b.count()
    total = a_count + b_count
    if offset >= total:
        return total, []
    i = split(a, b, offset, a_count, b_count)
    tagged = [(0, key) for key in a.keys(i, i + limit)]
    tagged += [(1, key) for key in b.keys(offset - i, offset - i + limit)]
    tagged.sort(key=lambda entry: entry[1], reverse=True)
    return total, tagged[:limit]


class ListSource:
    """A source over keys already in memory (sorted newest first)."""

    def __init__(self, keys: list[Key]) -> None:
        self._keys = keys

    def count(self) -> int:
        return len(self._keys)

    def keys(self, start: int, stop: int) -> list[Key]:
        return self._keys[start:stop]
