"""Stopping workers of the local cluster (`make run`: supervisord, embedded Redis, gunicorn, two
workers) the ways a user does, with a task in hand: `make worker-stop` (supervisorctl stop)
and `make stop` (every worker at once, then supervisord's shutdown). SIGTERM reaches the
worker alone, so the task completes on its first attempt, never as `task_process_died`. And
what the cluster keeps under var/ is its user's alone.

The tests share one cluster and run in this order: the last one stops it.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
import redis

from distributed.config import QueueConfig
from distributed.embedded import EmbeddedRedis
from distributed.jobs import get_job
from distributed.queue import Queue
from tests.support.cluster import LocalCluster, alive, local_cluster
from tests.support.tasks import submit_tasks
from tests.support.workers import log_events, wait_until

pytestmark = pytest.mark.slow
WORKERS = ("worker-1", "worker-2")
TASK_S = 4.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with local_cluster(tmp_path_factory.mktemp("cluster"), workers=len(WORKERS)) as running:
        yield running


@pytest.fixture(scope="module")
def broker(cluster: LocalCluster):
    """(client, config, queue) on the cluster's Redis, as its workers see it."""
    config = QueueConfig(redis_url=cluster.redis_url())
    client = redis.Redis.from_url(config.redis_url, socket_timeout=5)
    try:
        yield client, config, Queue(client, config)
    finally:
        client.close()


def tasks_in_hand(client, config, job_id: str, count: int) -> list[dict]:
    """Once every task of the job is running: the tasks, each on a worker of its own."""
    def running() -> list[dict] | None:
        tasks = get_job(client, config, job_id)["tasks"]
        return tasks if all(t["state"] == "running" for t in tasks) else None

    tasks = wait_until(running, 60, 0.1, message="the tasks to be in hand")
    assert len({t["worker"] for t in tasks}) == count, tasks
    return tasks


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_the_redis_data_and_password_are_this_users_alone(
    cluster: LocalCluster,
) -> None:
    var = cluster.var_dir
    assert {name: mode(var / name) for name in (
        "db.sqlite3", "redis", "redis/redis.conf", "redis/appendonly.aof", "supervisord.conf",
    )} == {"db.sqlite3": 0o600, "redis": 0o700, "redis/redis.conf": 0o600,
           "redis/appendonly.aof": 0o600, "supervisord.conf": 0o600}
    assert {mode(p) for p in (var / "redis").iterdir()} == {0o600}
    assert mode(var / "media") == 0o755  # media stay readable by whoever serves them


def test_make_worker_stop_lets_the_task_in_hand_complete_on_attempt_1(
    cluster: LocalCluster, broker
) -> None:
    client, config, queue = broker
    # Given a 4 s task in hand on one of the workers
    job_id = submit_tasks(queue, 1, seconds=TASK_S)
    [task] = tasks_in_hand(client, config, job_id, 1)
    worker_id = task["worker"]
    try:
        # When it is stopped as `make worker-stop` stops it (supervisorctl stop: SIGTERM)
        stopped = cluster.make("worker-stop", f"ID={worker_id}")
        assert stopped.returncode == 0, stopped
        # Then, by the time the stop returns, that worker completed the task on attempt 1
        task = get_job(client, config, job_id)["tasks"][0]
        assert (task["state"], task["worker"], task["attempts"], task["error"]) == (
            "completed", worker_id, 1, None), task
        log = cluster.worker_log(worker_id)
        assert "task_process_died" not in log and log_events(log, "task.retry") == []
        assert log_events(log, "worker.stop")[-1]["exit_code"] == 0
        status = [line for line in cluster.make("ps").stdout.splitlines() if worker_id in line]
        assert status and "STOPPED" in status[0], status
    finally:
        assert cluster.make("worker-start", f"ID={worker_id}").returncode == 0


def test_make_stop_lets_every_task_in_hand_complete_on_attempt_1(
    cluster: LocalCluster, broker, tmp_path: Path
) -> None:
    client, config, queue = broker
    # Given both workers with a 4 s task in hand
    job_id = submit_tasks(queue, len(WORKERS), seconds=TASK_S)
    tasks_in_hand(client, config, job_id, len(WORKERS))
    pids = list(cluster.program_pids().values())
    # When the whole cluster is stopped with `make stop`
    stopped = cluster.make("stop")
    assert stopped.returncode == 0 and "every process exited" in stopped.stdout, stopped
    assert [pid for pid in pids if alive(pid)] == []
    # Then Redis's append-only file, read back by a server of our own, says both tasks
    # completed on their first attempt, one per worker
    shutil.copytree(cluster.var_dir / "redis", tmp_path / "redis")
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    try:
        reader = redis.Redis.from_url(server.url, socket_timeout=5)
        tasks = get_job(reader, QueueConfig(redis_url=server.url), job_id)["tasks"]
        reader.close()
    finally:
        server.stop()
    assert [(t["state"], t["attempts"], t["error"]) for t in tasks] == [
        ("completed", 1, None)] * len(WORKERS), tasks
    assert sorted(t["worker"] for t in tasks) == list(WORKERS)
    for worker_id in WORKERS:
        assert "task_process_died" not in cluster.worker_log(worker_id)
