"""Hostile inputs, generated on the fly: image files small on disk and expensive to decode,
and clients that never finish their requests."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from collections.abc import Iterator

import numpy as np
from PIL import Image


def progressive_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", progressive=True, quality=90)
    return buffer.getvalue()


def jpeg_scan_bomb(width: int = 6000, height: int = 6000, scans: int = 2000) -> bytes:
    """A progressive JPEG whose last refinement scan is repeated until the file holds
    ``scans`` scans: decoders redo the scan each time, so decode time grows with the scan
    count while the file stays small (a 6000x6000 image of one flat colour, a few hundred KiB).
    """
    flat = Image.new("RGB", (width, height), (120, 130, 140))
    buffer = io.BytesIO()
    flat.save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    head, scan = data[:last_scan], data[last_scan:end]
    present = data.count(b"\xff\xda")
    return head + scan * (scans - present + 1) + b"\xff\xd9"


@contextlib.contextmanager
def trickling_clients(port: int, count: int = 64, host: str = "127.0.0.1") -> Iterator[None]:
    """``count`` connections to ``host:port`` that never finish their request: half send the
    headers of a GET a byte every 0.5 s, half a multipart POST's body (1 MB declared). Closed
    on the way out."""
    sockets = []
    try:
        for index in range(count):
            sock = socket.create_connection((host, port))
            sockets.append(sock)
            if index % 2:
                sock.sendall(b"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            else:
                sock.sendall(b"POST /api/images/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: multipart/form-data; boundary=x\r\n"
                             b"Content-Length: 1000000\r\n\r\n")
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.5):
                for sock in sockets:
                    with contextlib.suppress(OSError):
                        sock.send(b"X")

        thread = threading.Thread(target=trickle, name="trickling-clients", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
    finally:
        for sock in sockets:
            sock.close()
