"""A container's stop reaches the worker alone: `docker stop`, `docker-compose stop` and a
Kubernetes pod's termination send SIGTERM to the container's PID 1, and PID 1 must be the
worker itself, with nothing in between (an init such as tini with -g, `init: true`, a shell)
that would forward the signal to the whole process group, task processes included. The
worker then finishes its task in hand (tests/integration/test_stop_signals.py runs that
case; tests/containers the real engine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from . import REPO_ROOT, dockerfile_instructions, load_yaml, load_yaml_documents

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
WORKER_MANIFEST = REPO_ROOT / "deploy" / "k8s" / "worker.yaml"
WORKERS = ("worker-1", "worker-2", "worker-3")
WORKER_COMMAND = ["python", "-m", "workers"]
# Init processes and shells that would stand between the engine and the worker.
FORWARDERS = ("tini", "dumb-init", "docker-init", "s6-", "supervisord", "sh -c", "bash -c")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


@pytest.mark.parametrize("name", WORKERS)
def test_compose_runs_the_worker_as_pid_1_with_no_init_in_front(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert service.get("init", False) is False  # docker's own tini would be PID 1
    assert service.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert "entrypoint" not in service  # the image's: docker/entrypoint.sh, which execs
    assert service["command"] == WORKER_COMMAND  # exec form: no shell


def test_the_image_enters_through_the_exec_ing_entrypoint_and_stops_with_sigterm() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text(encoding="utf-8"))
    final = instructions[max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM"):]
    entrypoints = [args for kw, args in final if kw == "ENTRYPOINT"]
    assert entrypoints == ['["/bin/sh", "/app/docker/entrypoint.sh"]']  # exec form
    assert all(args == "SIGTERM" for kw, args in final if kw == "STOPSIGNAL")
    assert not [args for _, args in instructions if any(f in args for f in FORWARDERS)]


def test_the_entrypoint_replaces_itself_and_never_forwards_or_traps_signals() -> None:
    script = "\n".join(line for line in ENTRYPOINT.read_text(encoding="utf-8").splitlines()
                       if not line.lstrip().startswith("#"))
    assert "trap" not in script and "kill" not in script and "setsid" not in script
    assert 'exec python -m workers "$@"' in script and 'exec "$role" "$@"' in script


def test_sigterm_to_the_entrypoints_pid_reaches_the_worker_itself(tmp_path: Path) -> None:
    # Given the entrypoint started as compose starts a worker container, with a stand-in
    # `python` that reports its pid and the signals it gets
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "worker.log"
    stub = bin_dir / "python"
    stub.write_text(
        f'#!/bin/sh\necho "$$ started $*" >> "{log}"\n'
        f'trap \'echo "$$ TERM" >> "{log}"; exit 0\' TERM\n'
        "while :; do sleep 0.05; done\n", encoding="utf-8")
    stub.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"}
    proc = subprocess.Popen(["sh", str(ENTRYPOINT), *WORKER_COMMAND], cwd=REPO_ROOT, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while "started" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None, "no worker started"
            time.sleep(0.05)
        # When SIGTERM goes to that process alone, as the engine sends it to PID 1
        os.kill(proc.pid, signal.SIGTERM)
        # Then the worker is that very process and gets the signal itself
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert log.read_text().splitlines() == [
        f"{proc.pid} started -m workers", f"{proc.pid} TERM"]


def test_kubernetes_runs_the_worker_as_pid_1_of_its_container() -> None:
    [deployment] = [d for d in load_yaml_documents(WORKER_MANIFEST) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    # A shared process namespace would make the pause container PID 1 of every container.
    assert pod.get("shareProcessNamespace", False) is False
    [container] = pod["containers"]
    assert "command" not in container  # the image's entrypoint, which execs the args
    assert container["args"] == WORKER_COMMAND
    assert "preStop" not in container.get("lifecycle", {})
