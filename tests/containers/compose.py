"""docker-compose (1.29, Debian's) on the repository's docker-compose.yml, against a private
engine: a project of its own name, its images and published port chosen by the test."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.containers.engine import DockerEngine, EngineError

COMPOSE = "docker-compose"


@dataclass
class ComposeProject:
    engine: DockerEngine
    root: Path
    name: str
    variables: Mapping[str, str] = field(default_factory=dict)

    def run(self, *args: str, timeout: float = 180.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [COMPOSE, "--ansi", "never", "-p", self.name,
                "-f", str(self.root / "docker-compose.yml"), *args]
        proc = subprocess.run(argv, cwd=self.root, env=self.engine.env(**self.variables),
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise EngineError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                              f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        return proc

    def container_id(self, service: str) -> str:
        ids = self.run("ps", "-q", service).stdout.split()
        if len(ids) != 1:
            raise EngineError(f"{service}: expected one container, found {ids}")
        return ids[0]

    def inspect(self, service: str) -> dict[str, Any]:
        """`docker inspect` of the service's one container."""
        out = self.engine.docker("inspect", self.container_id(service)).stdout
        data: dict[str, Any] = json.loads(out)[0]
        return data

    def state(self, service: str) -> dict[str, Any]:
        state: dict[str, Any] = self.inspect(service)["State"]
        return state

    def health(self, service: str) -> str:
        """"healthy", "starting", "unhealthy", or the container's status when it has no
        health (e.g. "exited")."""
        state = self.state(service)
        if state.get("Status") != "running":
            return str(state.get("Status"))
        health = state.get("Health")
        return str(health["Status"]) if isinstance(health, dict) else "running"

    def wait_healthy(self, services: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            health = {service: self.health(service) for service in services}
            if set(health.values()) == {"healthy"}:
                return
            if time.monotonic() > deadline:
                raise EngineError(f"not healthy after {timeout_s}s: {health}\n"
                                  f"{self.logs(tail=40)}")
            time.sleep(1)

    def logs(self, tail: int = 200) -> str:
        proc = self.run("logs", "--no-color", "--tail", str(tail), check=False, timeout=60)
        return proc.stdout + proc.stderr

    def volumes(self) -> list[str]:
        out = self.engine.docker("volume", "ls", "-q", "--filter",
                                 f"label=com.docker.compose.project={self.name}").stdout
        return out.split()

    def containers(self) -> list[str]:
        out = self.engine.docker("ps", "-aq", "--filter",
                                 f"label=com.docker.compose.project={self.name}").stdout
        return out.split()
