"""The distributed mode across machines, simulated with one Linux network namespace per host.

The server host runs redis-server and the API; three worker hosts each run ``python -m workers``
and reach Redis only through their own veth on a private bridge (10.77.0.0/24, which exists only
inside the namespaces); a client host sends the HTTP requests. Only the network is separated:
the file system is shared, so MEDIA_ROOT is one local directory standing in for a shared volume.
Faults are real: a worker host's interface goes down mid-task and comes back later.

Timings are short (heartbeat 0.5 s, lease 1.5 s). A worker blocked on a dead link notices after
its Redis socket timeout (5 s), so the waits are generous; nothing asserts on durations.
"""

from __future__ import annotations

import collections
from typing import Any

import pytest

from distributed.ids import new_job_id
from distributed.jobs import get_job
from distributed.messages import TaskMessage
from distributed.queue import Queue
from tests.multihost.conftest import Cluster
from tests.support.redis import assert_counts_add_up
from tests.support.workers import log_events, wait_until

pytestmark = pytest.mark.slow

SLEEP_TASK_S = 3.0  # long enough to cut the link while the task is in hand
SLACK_S = 10.0


def finished(cluster: Cluster, job_id: str) -> dict[str, Any] | None:
    job = get_job(cluster.redis, cluster.config, job_id)
    return job if job and job["status"] not in ("queued", "running") else None


def cut_the_holder_mid_task(cluster: Cluster, job_id: str) -> str:
    """Submit one sleep task, wait until a worker holds it, cut that worker's link; its id."""
    Queue(cluster.redis, cluster.config).submit(
        job_id=job_id, priority="normal",
        messages=[TaskMessage(kind="sleep", job_id=job_id, index=0, seconds=SLEEP_TASK_S)],
        job_fields={"mode": "distributed"},
    )

    def holder() -> str | None:
        [task] = get_job(cluster.redis, cluster.config, job_id)["tasks"]
        return task["worker"] if task["state"] == "running" else None

    worker_id = wait_until(holder, 20, message="a worker to take the task")
    cluster.host_of(worker_id).cut()
    return worker_id


def log_since(cluster: Cluster, worker_id: str, mark: int) -> str:
    return cluster.workers[worker_id].log()[mark:]


def test_batch_submitted_through_the_api_completes_across_hosts(healthy_cluster: Cluster):
    cluster = healthy_cluster
    before = cluster.stats()
    # When the client host posts a batch of the server's sample images
    answer = cluster.http("POST", "/api/process-batch/distributed/",
                          {"filters": ["sharpen", "grayscale"]})
    assert answer.status == 202, answer.body[:2000]
    submitted = answer.json()
    job = wait_until(lambda: finished(cluster, submitted["id"]), 60, 0.1,
                     message="the batch to finish")
    # Then every task completed, the work was spread over hosts, the outputs are on the volume
    assert job["status"] == "completed", job["states"]
    assert len(job["tasks"]) == submitted["total"] > 1
    by_worker = collections.Counter(t["result"].worker for t in job["tasks"])
    assert len(by_worker) >= 2 and set(by_worker) <= set(cluster.workers), by_worker
    for task in job["tasks"]:
        assert (cluster.media_root / task["result"].output_key).is_file()
    stats = assert_counts_add_up(cluster.redis, cluster.config)
    assert stats["completed"] - before.get("completed", 0) == submitted["total"]
    # and the API tells the client host the same, at the status URL it gave
    detail = cluster.http("GET", submitted["status_url"])
    assert detail.status == 200, detail.body[:2000]
    results = detail.json()["results"]
    assert detail.json()["status"] == "completed"
    assert collections.Counter(r["worker"] for r in results) == by_worker


def test_worker_cut_off_mid_task_loses_it_to_another_host_and_is_shown_dead(
    healthy_cluster: Cluster,
):
    cluster = healthy_cluster
    before = cluster.stats()
    # Given a worker holding a task, when its host's link goes down
    marks = {w: len(p.log()) for w, p in cluster.workers.items()}
    holder = cut_the_holder_mid_task(cluster, job_cut := new_job_id())
    # Then it is shown dead (heartbeat timeout = 3 intervals, plus slack), here and in the API
    timeout_s = cluster.config.heartbeat_timeout_s + SLACK_S
    wait_until(lambda: cluster.statuses().get(holder) == "dead", timeout_s,
               message=f"{holder} dead in cluster_status")
    wait_until(lambda: cluster.api_statuses().get(holder) == "dead", SLACK_S, 0.2,
               message=f"{holder} dead in GET /api/workers/status/")
    # and its task is reclaimed when the lease expires and finished by a worker on another host
    job = wait_until(lambda: finished(cluster, job_cut), 30, message="the task to finish")
    [task] = job["tasks"]
    assert task["state"] == "completed", task
    assert task["worker"] in set(cluster.workers) - {holder}, task
    assert task["attempts"] == 2, task
    stats = assert_counts_add_up(cluster.redis, cluster.config)
    assert stats["completed"] - before.get("completed", 0) == 1
    assert stats["reclaimed"] - before.get("reclaimed", 0) >= 1
    # The others stayed in the cluster; the cut-off worker is alive, only unreachable, and knows
    statuses = cluster.statuses()
    assert all(statuses[w] not in ("dead", "stopped") for w in cluster.workers if w != holder), (
        statuses)
    assert cluster.workers[holder].alive()
    wait_until(lambda: log_events(log_since(cluster, holder, marks[holder]), "redis.down"),
               SLACK_S, 0.1, message=f"{holder} to log redis.down")


def test_reconnected_worker_rejoins_and_its_stale_completion_is_fenced(
    healthy_cluster: Cluster,
):
    cluster = healthy_cluster
    before = cluster.stats()
    # Given a worker cut off mid-task, declared dead, its task finished by another host
    marks = {w: len(p.log()) for w, p in cluster.workers.items()}
    holder = cut_the_holder_mid_task(cluster, job_rejoin := new_job_id())
    job = wait_until(lambda: finished(cluster, job_rejoin), 30, message="the task to finish")
    [task] = job["tasks"]
    assert task["state"] == "completed" and task["worker"] != holder, task
    wait_until(lambda: cluster.statuses().get(holder) == "dead", SLACK_S,
               message=f"{holder} dead")
    wait_until(lambda: log_events(log_since(cluster, holder, marks[holder]), "redis.down"),
               SLACK_S, 0.1, message=f"{holder} to notice the outage")
    # When its link comes back
    mark = len(cluster.workers[holder].log())
    cluster.host_of(holder).restore()
    # Then it reconnects and rejoins the registry as healthy, here and in the API
    wait_until(lambda: log_events(log_since(cluster, holder, mark), "redis.up"), 30, 0.1,
               message=f"{holder} to reconnect")
    wait_until(lambda: cluster.statuses().get(holder) == "healthy", SLACK_S, 0.1,
               message=f"{holder} healthy again")
    wait_until(lambda: cluster.api_statuses().get(holder) == "healthy", SLACK_S, 0.2,
               message=f"{holder} healthy in GET /api/workers/status/")
    # and its late completion of the task it lost is refused, not counted twice
    wait_until(lambda: any(line.get("task_id") == task["id"]
                           for line in log_events(log_since(cluster, holder, mark), "task.fenced")),
               30, 0.1, message=f"{holder}'s stale completion to be fenced")
    stats = assert_counts_add_up(cluster.redis, cluster.config)
    assert stats["fenced"] - before.get("fenced", 0) >= 1
    assert stats["completed"] - before.get("completed", 0) == 1
    [after] = get_job(cluster.redis, cluster.config, job_rejoin)["tasks"]
    assert (after["state"], after["worker"], after["attempts"]) == (
        "completed", task["worker"], task["attempts"])
    assert all(w.alive() for w in cluster.workers.values())
