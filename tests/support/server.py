"""A live API server process for tests, started as production starts it, always stopped.

``run_api_server(directory, ...)`` is a context manager: it migrates a fresh SQLite database
under ``directory/var``, starts the server on a free loopback port, waits until
``/api/health/live/`` answers (and, under gunicorn, until every worker process is up) and
yields an :class:`ApiServer`. On the way out, even when the test failed, the server gets
SIGTERM by its PID, some time to stop, then SIGKILL by PID (its worker processes too, when
it had to be killed). Only processes started here are signalled.

By default the server is what docker/entrypoint.sh and devcluster/supervisor.py run::

    python -m gunicorn project.asgi:application -c python:project.gunicorn_conf \\
        --bind 127.0.0.1:<port> --workers 1 --threads 4 --timeout 120

(uvicorn workers, project/uvicorn_worker.py). ``app="wsgi"`` serves project.wsgi with
gunicorn's gthread workers instead; ``server="uvicorn"`` runs plain ``python -m uvicorn``.

``api_server`` is the pytest fixture: a factory, ``api_server(queue_config=..., **options)``,
whose servers are stopped at the end of the test. Module-scoped fixtures use
``run_api_server`` directly (``with run_api_server(...) as server: yield server``).

Layout of ``directory``: ``var/`` (VAR_DIR: the database), ``media/`` (MEDIA_ROOT unless
``media_root`` is given), ``tmp/`` (the server's TMPDIR, so a test can watch what it
spools), ``server.log`` (its standard output and error).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import requests

from distributed.config import QueueConfig
from distributed.embedded import free_port
from tests.support.workers import ROOT, wait_until, worker_env

__all__ = ["ApiServer", "api_server", "run_api_server"]

HOST = "127.0.0.1"
# What the server must not inherit from the shell running the tests: it gets its own
# database, storage and queue settings (or none), with authentication off.
_NOT_INHERITED = ("REDIS_", "WORKER_", "AUTH_", "DATABASE_URL", "MEDIA_ROOT", "LOG_FORMAT",
                  "DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR", "TMPDIR")


def children(pid: int) -> set[int]:
    """The PIDs of the direct children of process ``pid`` (gunicorn's workers)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        return {int(p) for p in path.read_text().split()}
    return set()


@dataclass
class ApiServer:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    directory: Path
    var_dir: Path
    media_root: Path
    tmpdir: Path
    log_path: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        """The PID of the server process (gunicorn's master, or uvicorn)."""
        return self.proc.pid

    def children(self) -> set[int]:
        """The PIDs of its worker processes (gunicorn's workers; none under uvicorn)."""
        return children(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def manage(self, *args: str) -> str:
        """Run a manage.py command against this server's database; its standard output."""
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                              check=True, timeout=120, capture_output=True,
                              text=True).stdout

    def connect(self, timeout_s: float = 30.0) -> socket.socket:
        """A raw TCP connection to the server."""
        return socket.create_connection((HOST, self.port), timeout=timeout_s)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 20.0) -> int:
        """SIGTERM by PID, wait up to ``grace_s``, then SIGKILL by PID (and SIGKILL its
        workers left behind, whose PIDs were read before the signal). Its exit status."""
        if self.proc.poll() is None:
            workers = self.children()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                for pid in workers:
                    if _is_server_process(pid):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
        return self.proc.returncode


def _is_server_process(pid: int) -> bool:
    """Still a server process of ours (guards against a PID reused meanwhile)?"""
    with contextlib.suppress(OSError):
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return b"gunicorn" in cmdline or b"uvicorn" in cmdline
    return False


def server_env(directory: Path, media_root: Path, queue_config: QueueConfig | None,
               env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: the shell's, minus what must not leak in (_NOT_INHERITED),
    with VAR_DIR, MEDIA_ROOT, TMPDIR under ``directory``, the queue settings of
    ``queue_config`` (see :func:`worker_env`; without it, no Redis at all), no rate limit,
    then ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    if queue_config is not None:
        # worker_env's queue settings (REDIS_URL, REDIS_PREFIX, ..., LOG_LEVEL); what else it
        # copies from the shell stays filtered as above.
        base.update({k: v for k, v in worker_env(queue_config, media_root).items()
                     if k.startswith("REDIS_") or not k.startswith(_NOT_INHERITED)})
    # The rate limit is off unless a test sets THROTTLE_RATE (as tests/conftest.py does for
    # the Django test client): a test sends far more than a client would.
    base.update(VAR_DIR=str(directory / "var"), MEDIA_ROOT=str(media_root),
                TMPDIR=str(directory / "tmp"), DJANGO_ALLOWED_HOSTS=HOST, PYTHONUNBUFFERED="1",
                THROTTLE_RATE="off")
    base.update(env or {})
    return base


def _command(server: str, app: str, port: int, workers: int, threads: int) -> list[str]:
    if server == "gunicorn":
        command = [sys.executable, "-m", "gunicorn", f"project.{app}:application",
                   "-c", "python:project.gunicorn_conf", "--bind", f"{HOST}:{port}",
                   "--workers", str(workers), "--threads", str(threads), "--timeout", "120"]
        if app == "wsgi":  # the config's worker class is ASGI-only
            command += ["-k", "gthread"]
        return command
    if server == "uvicorn":
        if app != "asgi":
            raise ValueError("uvicorn serves the ASGI application only")
        return [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", HOST,
                "--port", str(port), "--workers", str(workers), "--no-access-log"]
    raise ValueError(f"unknown server {server!r}")


@contextlib.contextmanager
def run_api_server(
    directory: Path,
    *,
    queue_config: QueueConfig | None = None,
    env: Mapping[str, str] | None = None,
    server: Literal["gunicorn", "uvicorn"] = "gunicorn",
    app: Literal["asgi", "wsgi"] = "asgi",
    workers: int = 1,
    threads: int = 4,
    migrate: bool = True,
    media_root: Path | None = None,
    ready_timeout_s: float = 60.0,
    stop_grace_s: float = 20.0,
) -> Iterator[ApiServer]:
    """Start an API server in ``directory`` (see the module's docstring); stop it on exit.

    ``queue_config``: the Redis and queue settings it uses (none: no Redis configured).
    ``env``: variables set last, over everything else (MAX_REQUEST_BYTES, TMPDIR, ...).
    ``media_root``: its storage, e.g. ``start_worker.media_root`` to share the workers'.
    """
    directory.mkdir(parents=True, exist_ok=True)
    media = media_root or directory / "media"
    media.mkdir(parents=True, exist_ok=True)
    environ = server_env(directory, media, queue_config, env)
    Path(environ["TMPDIR"]).mkdir(parents=True, exist_ok=True)
    command = _command(server, app, 0, workers, threads)  # refuse bad options before work
    if migrate:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=ROOT, env=environ, check=True, timeout=120)
    port = free_port()
    command = _command(server, app, port, workers, threads)
    log_path = directory / "server.log"
    with log_path.open("wb") as log:
        # A session of its own: a Ctrl+C in the terminal reaches pytest, not the server.
        proc = subprocess.Popen(command, cwd=ROOT, env=environ, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = ApiServer(url=f"http://{HOST}:{port}", port=port, proc=proc, directory=directory,
                    var_dir=Path(environ["VAR_DIR"]), media_root=Path(environ["MEDIA_ROOT"]),
                    tmpdir=Path(environ["TMPDIR"]), log_path=log_path, env=environ)
    try:
        # gunicorn: each of its worker processes is up (one answering is not all of them).
        expected = workers if server == "gunicorn" else 0

        def up() -> bool:
            assert proc.poll() is None, f"the API server exited {proc.poll()}:\n{api.log()}"
            if len(api.children()) < expected:
                return False
            with contextlib.suppress(requests.ConnectionError, requests.Timeout):
                return requests.get(f"{api.url}/api/health/live/", timeout=2).ok
            return False

        wait_until(up, ready_timeout_s, message=f"the API server ({server}) to answer")
        yield api
    finally:
        api.stop(stop_grace_s)


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    """``api_server(directory=None, **options)`` starts a server (options: those of
    :func:`run_api_server`) in ``directory`` (default: a new one under the test's tmp_path)
    and returns it; every server it started is stopped at teardown, pass or fail."""
    with contextlib.ExitStack() as stack:
        numbers = itertools.count()

        def start(directory: Path | None = None, **options: object) -> ApiServer:
            where = directory or tmp_path / f"api-{next(numbers)}"
            return stack.enter_context(run_api_server(where, **options))  # type: ignore[arg-type]

        yield start
