"""A private Docker engine for the container tests, and a record of the host's networking.

:class:`DockerEngine` starts ``dockerd`` (Debian's docker.io) with everything of its own in a
temporary directory under var/containers: ``--data-root``, ``--exec-root``, its socket
(``-H unix://…/docker.sock``), ``--pidfile``, an empty ``--config-file`` and a client config
(``DOCKER_CONFIG``), so it shares nothing with a Docker that may run on the machine. It leaves
the host's networking alone: no iptables rules, no FORWARD policy, no ``ip_forward``, no
masquerading and no default ``docker0`` bridge. Compose's own bridge lives only as long as the
project, on a /24 no route of the host uses, and ports are published on 127.0.0.1 only (the
userland proxy). :meth:`DockerEngine.stop` ends dockerd by its PID (then its containerd and
shims, by PID, if they linger) and deletes the directory.

:func:`host_network_state` is what the host's networking looks like (iptables in every table,
forwarding sysctls, bridge netfilter, interface names): compared before and after the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DOCKERD = "dockerd"
# The engine's own client (20.10, like the daemon; a newer `docker` earlier on PATH would try
# BuildKit and a newer API).
DOCKER = "/usr/bin/docker"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
# Sockets must fit in sun_path (108 bytes): containerd's lives deepest, under the exec root.
MAX_SOCKET_PATH = 100
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw")
SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/ipv6/conf/all/forwarding",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
)
DOCKER_LINK_PREFIXES = ("docker", "br-", "veth")


class EngineError(RuntimeError):
    """dockerd did not start, or a docker command failed."""


def _run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 60.0,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), env=None if env is None else dict(env),
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise EngineError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                          f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return proc


# --- the host's networking -----------------------------------------------------------------


def host_network_state() -> dict[str, str]:
    """name -> value of everything a Docker engine could change in the host's networking."""
    state: dict[str, str] = {}
    for binary in ("iptables", "ip6tables"):
        if shutil.which(binary) is None:
            state[binary] = "not installed"
            continue
        for table in IPTABLES_TABLES:
            rules = _run([binary, "-w", "-t", table, "-S"], check=False)
            state[f"{binary} -t {table}"] = (rules.stdout + rules.stderr).strip()
    for name in SYSCTLS:
        path = Path("/proc/sys") / name
        state[name] = path.read_text().strip() if path.exists() else "absent"
    links = _run(["ip", "-o", "link", "show"], check=False).stdout.splitlines()
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in links if ":" in line)
    state["docker-like links"] = " ".join(n for n in names if n.startswith(DOCKER_LINK_PREFIXES))
    return state


def forward_policy(state: Mapping[str, str]) -> str | None:
    """The policy of iptables' FORWARD chain in a :func:`host_network_state` ("ACCEPT"...)."""
    for line in state.get("iptables -t filter", "").splitlines():
        if line.startswith("-P FORWARD "):
            return line.split()[2]
    return None


def restore_host_network(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Put back what dockerd is known to change (FORWARD policy, forwarding sysctls).
    Returns what was restored."""
    restored = []
    policy = forward_policy(before)
    if policy and forward_policy(after) != policy:
        _run(["iptables", "-w", "-P", "FORWARD", policy], check=False)
        restored.append(f"iptables FORWARD policy back to {policy}")
    for name in ("net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"):
        if before.get(name) != after.get(name) and before.get(name, "absent") != "absent":
            (Path("/proc/sys") / name).write_text(before[name] + "\n")
            restored.append(f"{name} back to {before[name]}")
    return restored


def unused_subnet() -> str:
    """A 10.213.N.0/24 that no route of the host overlaps (for compose's bridge network)."""
    routes = _run(["ip", "-4", "route", "show", "table", "all"], check=False).stdout
    taken = {int(part.split(".")[2]) for part in routes.split()
             if part.startswith("10.213.") and part.count(".") == 3}
    free = [n for n in range(1, 255) if n not in taken]
    if not free:
        raise EngineError("no free 10.213.N.0/24 for the compose network")
    return f"10.213.{random.choice(free)}.0/24"


# --- the engine ----------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


# What a dockerd starts (containerd, its shims, runc, the userland proxy): only these are
# stopped if they outlive it, and only when they name this engine's own directory.
ENGINE_COMMANDS = ("dockerd", "containerd", "runc", "docker-proxy")


def _engine_pids(directory: str) -> list[int]:
    """PIDs of engine processes whose command line names ``directory`` (unique to a run)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if not (entry / "comm").read_text().strip().startswith(ENGINE_COMMANDS):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            if directory in cmdline.decode(errors="replace"):
                pids.append(int(entry.name))
    return sorted(pids)


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory) + "/"
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            mounts.append(point)
    return sorted(mounts, key=len, reverse=True)  # deepest first


@dataclass
class DockerEngine:
    """One private dockerd; ``start()``, ``docker(...)``, ``stop()``."""

    parent: Path
    subnet: str = field(default_factory=unused_subnet)
    directory: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.parent.mkdir(parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix="engine-", dir=self.parent))
        if len(str(self.exec_root / "containerd" / "containerd.sock")) > MAX_SOCKET_PATH:
            # A deep checkout: the sockets would not fit in sun_path. Same layout in /tmp.
            shutil.rmtree(self.directory)
            self.directory = Path(tempfile.mkdtemp(prefix="imgproc-engine-"))

    @property
    def socket(self) -> Path:
        return self.directory / "docker.sock"

    @property
    def exec_root(self) -> Path:
        return self.directory / "exec"

    @property
    def pidfile(self) -> Path:
        return self.directory / "dockerd.pid"

    @property
    def log_path(self) -> Path:
        return self.directory / "dockerd.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a docker or docker-compose command aimed at this engine."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("DOCKER_", "COMPOSE_"))}
        env.update(
            DOCKER_HOST=f"unix://{self.socket}",
            DOCKER_CONFIG=str(self.directory / "client"),
            DOCKER_BUILDKIT="0",  # the classic builder: nothing to pull for a frontend
        )
        env.update(extra)
        return env

    def argv(self) -> list[str]:
        config = self.directory / "daemon.json"
        config.write_text("{}\n")  # not /etc/docker/daemon.json
        (self.directory / "client").mkdir(exist_ok=True)
        return [
            DOCKERD,
            "--config-file", str(config),
            "--data-root", str(self.directory / "data"),
            "--exec-root", str(self.exec_root),
            "--host", f"unix://{self.socket}",
            "--pidfile", str(self.pidfile),
            # The host's networking stays as it was (see the module docstring).
            "--iptables=false", "--ip6tables=false", "--ip-masq=false", "--ip-forward=false",
            "--bridge=none",
            "--default-address-pool", f"base={self.subnet},size=24",
        ]

    def start(self) -> DockerEngine:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineError(f"dockerd exited {self.process.returncode}:\n{self.log()}")
            if self.socket.exists() and _run([DOCKER, "version"], env=self.env(),
                                              check=False).returncode == 0:
                return self
            time.sleep(0.2)
        raise EngineError(f"dockerd not ready in {START_TIMEOUT_S}s:\n{self.log()}")

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def docker(self, *args: str, timeout: float = 120.0,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run([DOCKER, *args], env=self.env(), timeout=timeout, check=check)

    def stop(self, keep_log: Path | None = None) -> list[str]:
        """SIGTERM dockerd (it stops its containers and its containerd), SIGKILL after
        STOP_TIMEOUT_S; then anything still running from this directory, unmount, delete.
        Returns the problems met (empty when everything went)."""
        problems: list[str] = []
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                problems.append(f"dockerd (pid {proc.pid}) ignored SIGTERM for "
                                f"{STOP_TIMEOUT_S}s: killed")
                proc.kill()
                proc.wait(STOP_TIMEOUT_S)
        # containerd and its shims name this directory on their command lines.
        for pid in _engine_pids(str(self.directory)):
            if _alive(pid):
                problems.append(f"pid {pid} outlived dockerd: killed")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for point in _mounts_under(self.directory):
            if _run(["umount", "-l", point], check=False).returncode != 0:
                problems.append(f"could not unmount {point}")
        if keep_log is not None and self.log_path.exists():
            keep_log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, keep_log)
        shutil.rmtree(self.directory, ignore_errors=True)
        if self.directory.exists():
            problems.append(f"could not delete {self.directory}")
        return problems


def docker_info(engine: DockerEngine) -> dict[str, object]:
    info: dict[str, object] = json.loads(engine.docker("info", "--format", "{{json .}}").stdout)
    return info
