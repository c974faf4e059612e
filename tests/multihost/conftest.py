"""A small cluster on simulated hosts (see netns.py), built once for the module.

Hosts on the private bridge: ``server`` (redis-server on :6379 with its append-only file, and
the API under gunicorn on :8000), ``client`` (sends the HTTP requests) and ``w1``..``w3`` (one
``python -m workers`` each, reaching Redis over their own veth only). The test reads Redis
through the server's unix socket: an operator's console that no network fault touches.

Skips with the reason where namespaces cannot be made (not root, no ``ip``, EPERM).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from distributed.config import QueueConfig
from distributed.embedded import redis_server_binary
from distributed.status import cluster_status
from tests.multihost.netns import (
    SUBNET,
    Host,
    HttpAnswer,
    Network,
    Process,
    http_request,
    netns_unavailable_reason,
)
from tests.support.workers import ROOT, log_events, wait_until, worker_env

SERVER_IP = f"{SUBNET}.1"
CLIENT_IP = f"{SUBNET}.2"
WORKER_IPS = {"w1": f"{SUBNET}.11", "w2": f"{SUBNET}.12", "w3": f"{SUBNET}.13"}
REDIS_PORT = 6379
API_PORT = 8000
START_TIMEOUT_S = 60.0


@dataclass(repr=False)
class Cluster:
    network: Network
    config: QueueConfig
    redis: redis.Redis  # the console: unix socket of the server's redis-server
    media_root: Path
    api: Process
    workers: dict[str, Process]

    def __repr__(self) -> str:  # short, for failure reports
        return f"Cluster(namespaces {self.network.prefix}*, logs in {self.media_root.parent})"

    @property
    def server(self) -> Host:
        return self.network.hosts["server"]

    @property
    def client(self) -> Host:
        return self.network.hosts["client"]

    @property
    def api_url(self) -> str:
        return f"http://{SERVER_IP}:{API_PORT}"

    def host_of(self, worker_id: str) -> Host:
        return self.network.hosts[worker_id]

    def http(self, method: str, path_or_url: str, body: Any = None) -> HttpAnswer:
        """A request from the client host to the API, over the simulated network."""
        url = path_or_url if "://" in path_or_url else self.api_url + path_or_url
        return http_request(self.client, method, url, body)

    def stats(self) -> dict[str, int]:
        raw = self.redis.hgetall(self.config.keys.stats())
        return {key.decode(): int(value) for key, value in raw.items()}

    def statuses(self) -> dict[str, str]:
        """Worker id -> status, as distributed.status.cluster_status computes it."""
        return {w["id"]: w["status"] for w in cluster_status(self.redis, self.config)["workers"]}

    def api_statuses(self) -> dict[str, str]:
        """Worker id -> status, as GET /api/workers/status/ answers it to the client host."""
        answer = self.http("GET", "/api/workers/status/")
        assert answer.status == 200, (answer.status, answer.body[:2000])
        return {w["id"]: w["status"] for w in answer.json()["workers"]}


def _start_redis(network: Network, directory: Path, socket_path: Path) -> Process:
    directory.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_binary(), "--bind", SERVER_IP, "--port", str(REDIS_PORT),
        "--unixsocket", str(socket_path), "--unixsocketperm", "700",
        "--dir", str(directory), "--appendonly", "yes", "--save", "",
        "--daemonize", "no", "--protected-mode", "no",
    ]
    return network.spawn(network.hosts["server"], "redis", argv, env=os.environ,
                         log_path=directory / "redis.log", cwd=directory)


def _redis_ready(process: Process, client: redis.Redis) -> bool:
    assert process.alive(), process.log()[-2000:]
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _api_env(config: QueueConfig, media_root: Path, var_dir: Path) -> dict[str, str]:
    env = worker_env(config, media_root, VAR_DIR=str(var_dir), DJANGO_ALLOWED_HOSTS=SERVER_IP)
    env.pop("DATABASE_URL", None)  # the private sqlite file under VAR_DIR
    return env


def _start_api(network: Network, config: QueueConfig, media_root: Path, var_dir: Path) -> Process:
    var_dir.mkdir(parents=True, exist_ok=True)
    env = _api_env(config, media_root, var_dir)
    migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=120, check=False)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    argv = [sys.executable, "-m", "gunicorn", "project.asgi:application",
            "-k", "project.uvicorn_worker.ApiWorker",
            "--bind", f"{SERVER_IP}:{API_PORT}", "--workers", "1",
            "--graceful-timeout", "5"]
    return network.spawn(network.hosts["server"], "api", argv, env=env,
                         log_path=var_dir / "api.log", cwd=ROOT)


def _api_answers(cluster: Cluster) -> bool:
    assert cluster.api.alive(), cluster.api.log()[-3000:]
    return cluster.http("GET", "/api/health/").status != 0


def _started(worker: Process) -> bool:
    assert worker.alive(), worker.log()[-3000:]
    return bool(log_events(worker.log(), "worker.start"))


def _build(network: Network, tmp: Path) -> Cluster:
    network.add_server("server", SERVER_IP)
    network.add_host("client", CLIENT_IP)
    for worker_id, address in WORKER_IPS.items():
        network.add_host(worker_id, address)
    config = QueueConfig(
        redis_url=f"redis://{SERVER_IP}:{REDIS_PORT}/0", prefix="mh",
        heartbeat_interval_s=0.5, lease_s=1.5, max_retries=2, retry_backoff_base_s=0.2,
        retry_backoff_max_s=1.0, max_queued_tasks=1000, retention_days=3600 / 86400,
        dead_worker_retention_s=60,
    )
    media_root = tmp / "media"  # one local directory: the "shared volume" of every host
    media_root.mkdir()
    socket_path = tmp / "redis" / "redis.sock"
    redis_process = _start_redis(network, tmp / "redis", socket_path)
    console = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=5)
    wait_until(lambda: _redis_ready(redis_process, console), START_TIMEOUT_S,
               message="redis-server in the server namespace")
    workers = {
        worker_id: network.spawn(
            network.hosts[worker_id], worker_id, [sys.executable, "-m", "workers"],
            env=worker_env(config, media_root, WORKER_ID=worker_id),
            log_path=tmp / f"{worker_id}.log", cwd=ROOT, stop_signal=signal.SIGKILL,
        )
        for worker_id in WORKER_IPS
    }
    api = _start_api(network, config, media_root, tmp / "var")
    cluster = Cluster(network, config, console, media_root, api, workers)
    for worker in workers.values():  # registered over the veth: the network works
        wait_until(lambda w=worker: _started(w), START_TIMEOUT_S, 0.1,
                   message=f"{worker.name} to start")
    wait_until(lambda: _api_answers(cluster), START_TIMEOUT_S, 0.2, message="the API to answer")
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(f"cannot simulate hosts: {reason}")
    network = Network(prefix=f"ipt{os.getpid()}-")
    built: Cluster | None = None
    try:
        built = _build(network, tmp_path_factory.mktemp("multihost"))
        yield built
    finally:
        if built is not None:
            built.redis.close()
        problems = network.destroy() + [f"left behind: {n}" for n in network.leftovers()]
        assert not problems, problems


@pytest.fixture
def healthy_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """Every cable plugged in and every worker alive and healthy, before and after the test."""
    for worker_id in cluster.workers:
        cluster.host_of(worker_id).restore()
    for worker in cluster.workers.values():
        assert worker.alive(), worker.log()[-3000:]
    wait_until(lambda: cluster.statuses() == dict.fromkeys(cluster.workers, "healthy"), 30, 0.1,
               message="every worker healthy")
    try:
        yield cluster
    finally:
        for worker_id in cluster.workers:
            cluster.host_of(worker_id).restore()
