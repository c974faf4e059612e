"""`make run` for tests, as a user runs it: the local cluster under supervisord (embedded Redis,
gunicorn, N workers) in a VAR_DIR of the test's own, controlled through the make targets.

``local_cluster(directory, workers=3)`` is a context manager: it starts ``make run`` in its
own session, waits until the API answers and yields a :class:`LocalCluster`; on the way out,
even when the test failed, ``make stop``, then SIGKILL to that session's process group (only
what the test started) if it did not end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from distributed.embedded import free_port
from tests.support.workers import ROOT, wait_until

__all__ = ["LocalCluster", "alive", "local_cluster", "make", "program_pids"]


def make(
    *args: str, env: dict[str, str], timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is as good as gone
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


def program_pids(env: dict[str, str]) -> dict[str, int]:
    """{program: pid} of the RUNNING programs, from `make ps`."""
    pids = {}
    for line in make("ps", env=env).stdout.splitlines():
        if "RUNNING" in line:
            pids[line.split()[0]] = int(line.split("pid ")[1].split(",")[0])
    return pids


@dataclass
class LocalCluster:
    base_url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    directory: Path

    @property
    def var_dir(self) -> Path:
        return Path(self.env["VAR_DIR"])

    @property
    def log_path(self) -> Path:
        """`make run`'s own output: the banner, then supervisord's."""
        return self.directory / "make-run.log"

    def banner(self) -> str:
        return self.log_path.read_text()

    def make(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        return make(*args, env=self.env, timeout_s=timeout_s)

    def program_pids(self) -> dict[str, int]:
        return program_pids(self.env)

    def redis_url(self) -> str:
        """The embedded Redis, with the password that only this user's files hold."""
        password = (self.var_dir / "redis" / "redis.conf").read_text().split()[1]
        port = int(self.banner().split("embedded redis-server on 127.0.0.1:")[1].split()[0])
        return f"redis://:{password}@127.0.0.1:{port}/0"

    def worker_log(self, worker_id: str) -> str:
        return (self.var_dir / "log" / f"{worker_id}.log").read_text(errors="replace")


@contextlib.contextmanager
def local_cluster(directory: Path, *, workers: int = 3) -> Iterator[LocalCluster]:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REDIS_", "WORKER_", "MEDIA_ROOT", "DATABASE_URL"))}
    env.update(VAR_DIR=str(directory / "var"), PORT=str(port), WORKERS=str(workers))
    log = (directory / "make-run.log").open("w")
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cluster = LocalCluster(f"http://127.0.0.1:{port}", env, proc, directory)
    try:
        def healthy() -> bool:
            assert proc.poll() is None, cluster.banner()
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):
                return requests.get(f"{cluster.base_url}/api/health/", timeout=2).status_code == 200
            return False

        wait_until(healthy, 90, 0.2, message="make run to serve the API")
        yield cluster
    finally:
        make("stop", env=env)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
