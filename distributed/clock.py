"""The one clock of the Redis protocol: epoch milliseconds, as stored in every record."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch (wall clock: shared by every host of the cluster)."""
    return int(time.time() * 1000)
