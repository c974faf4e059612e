"""The container stack, built and run for real, once for the session (`make test-containers`).

Session fixtures, in the order they start (and the reverse order they clean up, failures
included):
  host_network  what the host's iptables, forwarding sysctls and docker-like links are;
                checked unchanged at the very end (anything dockerd is known to change is
                put back first, and the run fails)
  engine        a private dockerd (tests/containers/engine.py), stopped by its PID
  images        the offline build: the debootstrap tarball imported as the base, the
                project's image from docker/Dockerfile with the wheels of var/wheelhouse,
                the Redis image from docker/redis.Dockerfile; no registry is asked
  stack         `docker-compose up -d` of docker-compose.yml (redis, api, worker-1..3) with
                those images and the API on a free 127.0.0.1 port, all healthy;
                `docker-compose down -v` at the end, its logs kept in var/containers/last-run

`make test-containers` prepares the inputs (root, apt packages, wheelhouse, tarball) and runs
this directory; `pytest` alone never collects it (pyproject.toml ignores it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from distributed.embedded import free_port
from tests.containers.compose import ComposeProject
from tests.containers.engine import (
    DockerEngine,
    host_network_state,
    restore_host_network,
)

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_VAR = ROOT / "var" / "containers"
LAST_RUN = CONTAINERS_VAR / "last-run"
ROOTFS_TAR = Path(os.environ.get("ROOTFS_TAR", CONTAINERS_VAR / "debian-bookworm-rootfs.tar"))
WHEELHOUSE = ROOT / "var" / "wheelhouse"
BASE_IMAGE = "imgproc-base:bookworm"
APP_IMAGE = "imgproc:offline-test"
REDIS_IMAGE = "imgproc-redis:offline-test"
SERVICES = ["redis", "api", "worker-1", "worker-2", "worker-3"]
WORKERS = ["worker-1", "worker-2", "worker-3"]
BUILD_TIMEOUT_S = 600.0
HEALTHY_TIMEOUT_S = 180.0


def _preflight() -> None:
    """Fail (never skip) with the reason when this machine cannot run the stack."""
    if os.geteuid() != 0:
        pytest.fail("the container tests start their own dockerd: they need root "
                    "(run `make test-containers` as root)", pytrace=False)
    if not ROOTFS_TAR.is_file():
        pytest.fail(f"no base tarball at {ROOTFS_TAR}: `make test-containers` builds it "
                    "(docker/rootfs.sh)", pytrace=False)
    if not any(WHEELHOUSE.glob("*.whl")):
        pytest.fail(f"no wheels in {WHEELHOUSE}: `make wheelhouse` downloads them", pytrace=False)


@pytest.fixture(scope="session")
def host_network() -> Iterator[dict[str, str]]:
    _preflight()
    before = host_network_state()
    yield before
    after = host_network_state()
    if after != before:
        restored = restore_host_network(before, after)
        changed = {k: {"before": before.get(k), "after": after.get(k)}
                   for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        pytest.fail(f"the host's networking changed: {changed}; restored: {restored}")


@pytest.fixture(scope="session")
def engine(host_network: dict[str, str]) -> Iterator[DockerEngine]:
    LAST_RUN.mkdir(parents=True, exist_ok=True)
    docker = DockerEngine(CONTAINERS_VAR)
    try:
        docker.start()
        yield docker
    finally:
        problems = docker.stop(keep_log=LAST_RUN / "dockerd.log")
        assert not problems, problems


@dataclass(frozen=True)
class Images:
    base: str
    app: str
    redis: str
    seconds: dict[str, float]


@pytest.fixture(scope="session")
def images(engine: DockerEngine) -> Images:
    seconds = {}
    started = time.monotonic()
    engine.docker("import", str(ROOTFS_TAR), BASE_IMAGE, timeout=BUILD_TIMEOUT_S)
    seconds["import base"] = time.monotonic() - started
    started = time.monotonic()
    # The offline build of docs/containers.md, word for word.
    engine.docker("build", "--quiet", "-f", "docker/Dockerfile", "-t", APP_IMAGE,
                  "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "--build-arg", "PIP_NO_INDEX=1",
                  str(ROOT), timeout=BUILD_TIMEOUT_S)
    seconds["build app"] = time.monotonic() - started
    started = time.monotonic()
    engine.docker("build", "--quiet", "-f", "docker/redis.Dockerfile", "-t", REDIS_IMAGE,
                  "--build-arg", f"BASE_IMAGE={BASE_IMAGE}", str(ROOT / "docker"),
                  timeout=BUILD_TIMEOUT_S)
    seconds["build redis"] = time.monotonic() - started
    (LAST_RUN / "build-seconds.txt").write_text(
        "".join(f"{step}: {value:.1f}\n" for step, value in seconds.items()))
    return Images(BASE_IMAGE, APP_IMAGE, REDIS_IMAGE, seconds)


@pytest.fixture(scope="session")
def stack(engine: DockerEngine, images: Images) -> Iterator[ComposeProject]:
    project = ComposeProject(
        engine, ROOT, name=f"imgproc-ct{os.getpid()}",
        variables={"IMAGE": images.app, "REDIS_IMAGE": images.redis,
                   "API_BIND": "127.0.0.1", "API_PORT": str(free_port()),
                   # What `make compose-env` writes to .env, made for this run.
                   "REDIS_PASSWORD": secrets.token_urlsafe(24),
                   "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)},
    )
    try:
        project.run("up", "-d", "--no-build")
        project.wait_healthy(SERVICES, HEALTHY_TIMEOUT_S)
        yield project
    finally:
        (LAST_RUN / "compose.log").write_text(project.logs(tail=2000))
        project.run("down", "-v", "--remove-orphans", "--timeout", "30")
        leftovers = project.containers() + project.volumes()
        assert not leftovers, f"left after `down -v`: {leftovers}"


@dataclass
class Api:
    """The API through the port compose published on 127.0.0.1."""

    base_url: str
    session: requests.Session
    key: str = ""

    def get(self, path: str) -> Any:
        answer = self.session.get(self.base_url + path, timeout=30)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:2000])
        return answer.json()

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=300)

    def worker_statuses(self) -> dict[str, str]:
        return {w["id"]: w["status"] for w in self.get("/api/workers/status/")["workers"]}


@pytest.fixture(scope="session")
def api(stack: ComposeProject) -> Iterator[Api]:
    # The compose API requires keys (AUTH_REQUIRED=true): an admin key, made as the README says.
    key = stack.run("exec", "-T", "api", "python", "manage.py", "createapikey", "ct",
                    "--admin").stdout.strip()
    with contextlib.closing(requests.Session()) as session:
        session.headers["Authorization"] = f"Bearer {key}"
        yield Api(f"http://127.0.0.1:{stack.variables['API_PORT']}", session, key)
