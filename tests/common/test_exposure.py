"""The API refuses to serve an open door: a non-loopback bind with auth off (unless
ALLOW_ANONYMOUS), or with the public built-in secret key. Checked on real gunicorn processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common.exposure import bind_host, is_loopback, problems
from common.settings import ApiSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("bind", "host", "loopback"), [
    ("127.0.0.1:8000", "127.0.0.1", True),
    ("127.8.9.10:80", "127.8.9.10", True),
    ("[::1]:8000", "::1", True),
    ("localhost:8000", "localhost", True),
    ("unix:/tmp/api.sock", "unix", True),
    ("0.0.0.0:8000", "0.0.0.0", False),
    ("[::]:8000", "::", False),
    ("10.1.2.3:8000", "10.1.2.3", False),
    ("api.example.com:443", "api.example.com", False),
])
def test_bind_hosts(bind, host, loopback):
    assert bind_host(bind) == host
    assert is_loopback(host) is loopback


def test_what_refuses_an_exposed_bind():
    def found(**env: str) -> list[str]:
        return problems(["0.0.0.0"], ApiSettings.from_env(env))

    assert problems(["127.0.0.1"], ApiSettings.from_env({})) == []
    [auth, secret] = found()
    assert "AUTH_REQUIRED" in auth and "DJANGO_SECRET_KEY" in secret
    assert found(DJANGO_SECRET_KEY="x" * 50, AUTH_REQUIRED="true") == []
    assert found(DJANGO_SECRET_KEY="x" * 50, ALLOW_ANONYMOUS="true") == []
    [only] = found(AUTH_REQUIRED="true")
    assert "DJANGO_SECRET_KEY" in only


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn(bind: str, tmp_path: Path, **env: str) -> subprocess.Popen:
    environment = {**os.environ, "VAR_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1", **env}
    for name in ("AUTH_REQUIRED", "ALLOW_ANONYMOUS", "DJANGO_SECRET_KEY"):
        if name not in env:
            environment.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi:application", "-c",
         "python:project.gunicorn_conf", "--bind", bind, "--workers", "1"],
        cwd=ROOT, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("env", "needle"), [
    ({"DJANGO_SECRET_KEY": "s" * 50}, "AUTH_REQUIRED off"),
    ({"AUTH_REQUIRED": "true"}, "built-in DJANGO_SECRET_KEY"),
])
def test_gunicorn_refuses_to_start_on_an_exposed_address(tmp_path, env, needle):
    # on_starting runs before gunicorn creates its sockets: nothing ever listens on 0.0.0.0.
    proc = gunicorn(f"0.0.0.0:{free_port()}", tmp_path, **env)
    try:
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0
    assert needle in output.decode()
