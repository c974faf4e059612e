"""Simulated hosts for multi-host tests: Linux network namespaces on a private bridge.

``Network("ipt1234-")`` makes namespaces named ``<prefix><host>``. The first host added is the
server: its namespace holds the bridge (the "switch") with the server's address. Every other
host gets one veth pair created directly inside the namespaces (``eth0`` in the host, ``v-<host>``
on the server's bridge), so the root namespace gets no interface, address or route at all.
Addresses come from :data:`SUBNET`, a private /24 that exists only inside these namespaces.

Processes run in a host with ``ip netns exec`` and are tracked by PID; :meth:`Network.destroy`
stops every one of them (and anything else still inside the namespaces), then deletes the
namespaces, which deletes their veths. Only the network is separated: the file system, the
process table and the host name stay shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBNET = "10.77.0"
PREFIX_LEN = 24
IP_TIMEOUT_S = 20.0

__all__ = [
    "SUBNET", "Host", "HttpAnswer", "Network", "Process", "http_request",
    "netns_unavailable_reason",
]


class NetnsError(RuntimeError):
    """An ``ip`` command failed."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip <args>``; raises :class:`NetnsError` with its stderr when it fails."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT_S,
                          check=False)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc


def netns_unavailable_reason() -> str | None:
    """None when this process can create network namespaces; otherwise why it cannot."""
    if sys.platform != "linux":
        return f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root or in a privileged container)"
    if shutil.which("ip") is None:
        return "the `ip` command is missing (apt-get install iproute2)"
    probe = f"iptprobe{os.getpid()}"
    try:
        made = ip("netns", "add", probe, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns add` failed: {exc}"
    ip("netns", "del", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    return None


@dataclass
class Process:
    """A process started inside a host's namespace, with its output in ``log_path``."""

    host: Host
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: int = signal.SIGTERM

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout_s: float = 10.0) -> None:
        """``stop_signal``, then SIGKILL if it is still there after ``timeout_s``."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)
            self.popen.send_signal(self.stop_signal)
        try:
            self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
            self.popen.wait(timeout_s)


@dataclass
class Host:
    """One simulated machine: a network namespace with one address on the bridge."""

    name: str
    netns: str
    address: str
    iface: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this host's network namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def cut(self) -> None:
        """Pull the cable: the host's interface goes down, so its packets go nowhere."""
        ip("-n", self.netns, "link", "set", self.iface, "down")

    def restore(self) -> None:
        """Plug it back in (the address stays on the interface)."""
        ip("-n", self.netns, "link", "set", self.iface, "up")

    def link_up(self) -> bool:
        out = ip("-n", self.netns, "-j", "link", "show", "dev", self.iface).stdout
        return "UP" in json.loads(out)[0].get("flags", [])


@dataclass
class Network:
    """Namespaces ``<prefix><name>`` joined by a bridge in the first host's namespace."""

    prefix: str
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)

    def _new_netns(self, name: str) -> str:
        netns = f"{self.prefix}{name}"
        ip("netns", "add", netns)
        ip("-n", netns, "link", "set", "lo", "up")
        return netns

    def add_server(self, name: str, address: str) -> Host:
        """The host that also holds the bridge every other host plugs into."""
        if self.hosts:
            raise ValueError("add the server first")
        netns = self._new_netns(name)
        self.hosts[name] = host = Host(name, netns, address, iface="br0")
        ip("-n", netns, "link", "add", "br0", "type", "bridge")
        ip("-n", netns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", "br0")
        ip("-n", netns, "link", "set", "br0", "up")
        return host

    @property
    def server(self) -> Host:
        return next(iter(self.hosts.values()))

    def add_host(self, name: str, address: str) -> Host:
        """A host with ``eth0`` at ``address``, cabled to the server's bridge."""
        server = self.server
        netns = self._new_netns(name)
        self.hosts[name] = host = Host(name, netns, address, iface="eth0")
        port = f"v-{name}"
        # Both ends are created inside namespaces: nothing appears in the root namespace.
        ip("link", "add", "eth0", "netns", netns, "type", "veth",
           "peer", "name", port, "netns", server.netns)
        ip("-n", server.netns, "link", "set", port, "master", "br0")
        ip("-n", server.netns, "link", "set", port, "up")
        ip("-n", netns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        return host

    def spawn(self, host: Host, name: str, argv: Sequence[str], *, env: Mapping[str, str],
              log_path: Path, cwd: Path, stop_signal: int = signal.SIGTERM) -> Process:
        """Start ``argv`` inside ``host`` (``ip netns exec`` execs it: the PID is the command's).
        stdout and stderr go to ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            popen = subprocess.Popen(host.command(argv), cwd=cwd, env=dict(env),
                                     stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT)
        process = Process(host, name, popen, log_path, stop_signal)
        self.processes.append(process)
        return process

    def pids_inside(self) -> list[int]:
        """PIDs of every process still living in one of these namespaces."""
        pids = []
        for host in self.hosts.values():
            out = ip("netns", "pids", host.netns, check=False).stdout
            pids += [int(p) for p in out.split() if p.isdigit()]
        return pids

    def destroy(self) -> list[str]:
        """Stop every process started here, kill any straggler still inside the namespaces
        (e.g. a gunicorn worker), delete the namespaces. Returns what could not be cleaned."""
        problems = []
        for process in reversed(self.processes):
            try:
                process.stop()
            except (OSError, subprocess.TimeoutExpired) as exc:
                problems.append(f"{process.name} (pid {process.pid}): {exc}")
        deadline = time.monotonic() + 10
        while (left := self.pids_inside()) and time.monotonic() < deadline:
            for pid in left:  # only processes inside our own namespaces
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        if left:
            problems.append(f"processes still inside the namespaces: {left}")
        for host in reversed(list(self.hosts.values())):
            gone = ip("netns", "del", host.netns, check=False)
            if gone.returncode != 0:
                problems.append(f"ip netns del {host.netns}: {gone.stderr.strip()}")
        self.hosts.clear()
        return problems

    def leftovers(self) -> list[str]:
        """Namespaces with this network's prefix that still exist (should be none)."""
        out = ip("netns", "list", check=False).stdout
        return [line.split()[0] for line in out.splitlines()
                if line.strip() and line.split()[0].startswith(self.prefix)]


# A tiny HTTP client run inside a host with `ip netns exec`: standard library only, no proxy,
# prints {"status": ..., "body": ...} (status 0 when nothing answered).
_HTTP_CLIENT = r"""
import json, sys, urllib.error, urllib.request
method, url, body, timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
request = urllib.request.Request(url, method=method, data=body.encode() if body else None,
    headers={"Content-Type": "application/json", "Accept": "application/json"})
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(request, timeout=timeout) as answer:
        status, data = answer.status, answer.read()
except urllib.error.HTTPError as exc:
    status, data = exc.code, exc.read()
except OSError as exc:
    status, data = 0, str(exc).encode()
print(json.dumps({"status": status, "body": data.decode("utf-8", "replace")}))
"""


@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0: no answer (connection refused, unreachable, timed out)
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(host: Host, method: str, url: str, body: Any = None,
                 timeout_s: float = 15.0) -> HttpAnswer:
    """One HTTP request sent from inside ``host`` over the simulated network."""
    data = "" if body is None else json.dumps(body)
    proc = subprocess.run(
        host.command([sys.executable, "-I", "-c", _HTTP_CLIENT, method, url, data,
                      str(timeout_s)]),
        capture_output=True, text=True, timeout=timeout_s + 15, check=False,
    )
    if proc.returncode != 0:
        raise NetnsError(f"HTTP client in {host.netns} failed: {proc.stderr.strip()}")
    answer = json.loads(proc.stdout)
    return HttpAnswer(int(answer["status"]), answer["body"])
