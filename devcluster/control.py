"""Controlling a running local cluster from another terminal: ``make ps``, ``make stop`` and
``make demo`` (see the README's walkthrough).

``stop`` returns only once supervisord and every process it ran have exited (bounded by the
workers' shutdown grace period), so ``make stop && make run`` never meets a port in use. It
stops the workers first, all at once (each gets SIGTERM and finishes its task in hand), then
shuts supervisord down: its own shutdown would stop them one after another, each waiting for
its task. ``ps`` reports stopped and dead programs instead of failing on them.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
WORKER_PREFIX = "worker-"  # the worker programs are worker-1..N (devcluster/supervisor.py)
RUNNING_STATES = ("RUNNING", "STARTING", "BACKOFF")  # what `supervisorctl stop` acts on


@dataclass(frozen=True)
class Control:
    """The supervisord of the cluster whose state lives in ``var_dir``."""

    var_dir: Path
    supervisorctl: str = "supervisorctl"

    @property
    def conf_path(self) -> Path:
        return self.var_dir / "supervisord.conf"

    @property
    def pid_path(self) -> Path:
        return self.var_dir / "run" / "supervisord.pid"

    def supervisord_pid(self) -> int | None:
        """The pid of the running supervisord, or None when the cluster is not running."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if process_alive(pid) else None

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.supervisorctl, "-c", str(self.conf_path), *args],
            capture_output=True, text=True, timeout=60, check=False,
        )

    def program_pids(self) -> list[int]:
        """Pids of the programs supervisord runs now (redis, api, workers)."""
        out = self.ctl("pid", "all").stdout
        return [int(word) for word in out.split() if word.isdigit() and int(word) > 0]

    def running_workers(self) -> list[str]:
        """Names of the worker programs supervisord could stop now (running, starting or
        waiting to be restarted)."""
        names = []
        for line in self.ctl("status").stdout.splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[0].startswith(WORKER_PREFIX) \
                    and fields[1] in RUNNING_STATES:
                names.append(fields[0])
        return names

    def stop_programs(self, names: Sequence[str], timeout_s: float) -> None:
        """``supervisorctl stop`` each of ``names`` at once; returns when all have stopped
        (supervisord SIGKILLs one after its stopwaitsecs) or ``timeout_s`` has passed."""
        stops = [
            subprocess.Popen([self.supervisorctl, "-c", str(self.conf_path), "stop", name],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name in names
        ]
        deadline = time.monotonic() + timeout_s
        for proc in stops:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()  # the shutdown that follows stops what is left
                proc.wait()


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(FileNotFoundError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def wait_gone(
    pids: Sequence[int], timeout_s: float, *, alive: Callable[[int], bool] = process_alive,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> list[int]:
    """Wait until none of ``pids`` runs or ``timeout_s`` passes; the pids still running."""
    deadline = clock() + timeout_s
    left = [pid for pid in pids if alive(pid)]
    while left and clock() < deadline:
        sleep(0.1)
        left = [pid for pid in left if alive(pid)]
    return left


def stop(control: Control, *, grace_s: float, say: Callable[[str], None] = print) -> int:
    """Shut the cluster down and wait for every process to exit."""
    supervisord = control.supervisord_pid()
    if supervisord is None:
        say("The local cluster is not running.")
        return EXIT_OK
    pids = [*control.program_pids(), supervisord]
    say(f"Stopping the local cluster ({len(pids) - 1} processes; workers finish the task "
        f"in hand, up to {grace_s:g} s)...")
    started = time.monotonic()
    control.stop_programs(control.running_workers(), grace_s + 10)
    result = control.ctl("shutdown")
    if result.returncode != 0 and control.supervisord_pid() is not None:
        say(f"supervisorctl shutdown failed: {(result.stdout + result.stderr).strip()}")
        return EXIT_FAILED
    # supervisord waits up to stopwaitsecs (grace + 5 s) per program, then SIGKILLs it.
    left = wait_gone(pids, grace_s + 15)
    if left:
        say(f"Still running after {time.monotonic() - started:.0f} s: pids "
            f"{', '.join(map(str, left))}.")
        return EXIT_FAILED
    say(f"Stopped: every process exited ({time.monotonic() - started:.1f} s).")
    return EXIT_OK


def ps(control: Control, *, say: Callable[[str], None] = print) -> int:
    """Print each program's state. Stopped or dead workers are reported, not an error."""
    if control.supervisord_pid() is None:
        say("The local cluster is not running (start it with `make run`).")
        return EXIT_OK
    result = control.ctl("status")
    say(result.stdout.rstrip())
    # supervisorctl exits 3 when some program is not RUNNING: that is what ps is for.
    if result.returncode not in (0, 3):
        say(result.stderr.rstrip())
        return EXIT_FAILED
    return EXIT_OK
