"""The storage quota holds across API processes: a live gunicorn with two worker processes,
uploads sent at once from many threads, on both ledgers (Redis with REDIS_URL, the SQLite
database without). However the requests interleave, the tenant ends with exactly as many
uploads as fit in its quota, and its usage says so."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

pytestmark = pytest.mark.slow
MIB = 1024 * 1024
ATTEMPTS = 24


def noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def read_bytes(pid: int) -> int:
    """Bytes the process has read (``rchar``: request bodies off its sockets included)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError(f"no rchar for {pid}")


@pytest.mark.parametrize("ledger", ["redis", "database"])
def test_concurrent_uploads_through_two_processes_never_pass_the_quota(
    request, api_server, ledger
):
    # Given a gunicorn of two processes and a 1 MiB quota, and ~100 kB uploads (10 fit)
    queue_config = request.getfixturevalue("queue_config") if ledger == "redis" else None
    if queue_config is not None:
        request.getfixturevalue("redis_client")  # flushed around the test
    server = api_server(queue_config=queue_config, workers=2, threads=4,
                        env={"TENANT_STORAGE_QUOTA_MB": "1", "THROTTLE_RATE": ""})
    processes = sorted(server.children())
    assert len(processes) == 2
    before = {pid: read_bytes(pid) for pid in processes}
    data = noise_png(185)
    fit = MIB // len(data)
    assert fit == 10

    # When 24 uploads are sent from 8 threads at once
    def post(_: int) -> int:
        return requests.post(f"{server.url}/api/images/", files={"files": ("a.png", data)},
                             timeout=60).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, range(ATTEMPTS)))

    # Then exactly the uploads that fit were stored, the rest refused, and the usage agrees
    assert sorted(statuses) == [201] * fit + [413] * (ATTEMPTS - fit), statuses
    stored = list((server.media_root / "uploads").glob("img_*.png"))
    assert len(stored) == fit
    usage = requests.get(f"{server.url}/api/usage/", timeout=10).json()["storage"]
    assert usage["used_bytes"] == fit * len(data) == sum(p.stat().st_size for p in stored)
    assert usage["quota_bytes"] == MIB
    # (both processes took uploads: each read at least one request body)
    assert all(read_bytes(pid) - before[pid] > len(data) for pid in processes), server.log()
