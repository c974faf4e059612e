"""The users' fault-tolerance story on a real Docker engine: docker-compose.yml's redis, api and
worker-1..3, built offline, reached through the API's published 127.0.0.1 port.

Needs root (a private dockerd); `make test-containers` runs it. The tests share one stack and
each leaves every worker running and healthy for the next.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from typing import Any

import pytest
import requests
import yaml

from tests.containers.compose import ComposeProject
from tests.containers.conftest import WORKERS, Api, Images
from tests.support.workers import wait_until

# The README's batch: the server's sample images through sharpen + edges.
README_BATCH = ('{"filters": ["sharpen", "edges"], "filter_params": {"sharpen": {"intensity": 3}, '
                '"edges": {"threshold1": 50, "threshold2": 150}}}')
SAMPLE_COUNT = 8
# A pipeline of about half a second per image on this kind of machine: long enough batches to
# stop and kill workers in the middle of.
HEAVY = {
    "filters": ["blur", "rotate", "sharpen", "contrast", "sepia"],
    "filter_params": {"blur": {"radius": 12}, "rotate": {"degrees": 7},
                      "sharpen": {"intensity": 3}, "contrast": {"factor": 1.3}},
}
JOB_TIMEOUT_S = 300.0
HEARTBEAT_TIMEOUT_S = 6.0  # 3 x HEARTBEAT_INTERVAL_SECONDS (2 s) in docker-compose.yml
STATES = ("pending_total", "in_progress", "delayed", "completed", "dead_lettered", "cancelled")


def curl_post(api: Api, path: str, body: str) -> dict[str, Any]:
    """The README's command, run by curl itself."""
    out = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail-with-body", "-X", "POST", api.base_url + path,
         "-H", "Content-Type: application/json", "-H", f"Authorization: Bearer {api.key}",
         "-d", body],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, (out.returncode, out.stdout[-2000:], out.stderr)
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


def sample_ids(api: Api) -> list[str]:
    ids = [i["id"] for i in api.get("/api/images/")["images"] if i["kind"] == "sample"]
    assert len(ids) == SAMPLE_COUNT, ids
    return ids


def submit(api: Api, body: dict[str, Any]) -> str:
    answer = api.post("/api/process-batch/distributed/", body)
    assert answer.status_code == 202, (answer.status_code, answer.text[:2000])
    job_id: str = answer.json()["id"]
    return job_id


def finished_job(api: Api, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = api.get(f"/api/jobs/{job_id}/")
        return job if job["status"] not in ("queued", "running") else None

    job: dict[str, Any] = wait_until(done, JOB_TIMEOUT_S, 0.5, message=f"job {job_id} to finish")
    return job


def queue_counts(api: Api) -> dict[str, Any]:
    counts: dict[str, Any] = api.get("/api/workers/status/")["queue"]
    return counts


def assert_counts_add_up(api: Api) -> dict[str, Any]:
    queue = queue_counts(api)
    assert queue["accepted"] == sum(queue[state] for state in STATES), queue
    return queue


def worker_info(api: Api, worker_id: str) -> dict[str, Any]:
    workers = {w["id"]: w for w in api.get("/api/workers/status/")["workers"]}
    info: dict[str, Any] = workers.get(worker_id, {})
    return info


def task_in_hand(api: Api, worker_id: str, job_id: str) -> str | None:
    """The task of ``job_id`` the worker holds now (its last heartbeat says), if any."""
    task: str = worker_info(api, worker_id).get("current_task") or ""
    return task if task.startswith(job_id) else None


@pytest.fixture
def all_workers_healthy(stack: ComposeProject, api: Api) -> ComposeProject:
    """Every worker container running and healthy, and healthy in the API's status too."""
    stack.run("start", *WORKERS)
    stack.wait_healthy(WORKERS, 120)
    wait_until(lambda: all(api.worker_statuses().get(w) == "healthy" for w in WORKERS), 60, 0.5,
               message="worker-1..3 healthy in /api/workers/status/")
    return stack


# --- the file and the images ---------------------------------------------------------------


def test_docker_compose_1_29_accepts_the_compose_file_with_the_offline_images(
    stack: ComposeProject, images: Images
) -> None:
    version = stack.run("version", "--short").stdout.strip()
    assert version.startswith("1.29"), version
    config = yaml.safe_load(stack.run("config").stdout)
    services = config["services"]
    assert services["redis"]["image"] == images.redis
    for name in ("api", *WORKERS):
        assert services[name]["image"] == images.app
    (port,) = services["api"]["ports"]
    # Only loopback: nothing is published beyond this machine.
    published = port if isinstance(port, str) else f"{port['host_ip']}:{port['published']}"
    assert published.startswith("127.0.0.1:"), port


def test_offline_image_runs_the_debian_python_in_its_virtualenv_as_a_non_root_user(
    stack: ComposeProject,
) -> None:
    out = stack.run("exec", "-T", "api", "python", "-c",
                    "import os, sys, cv2; print(os.getuid(), sys.prefix, sys.version.split()[0])")
    uid, prefix, version = out.stdout.split()
    assert (uid, prefix) == ("10001", "/opt/venv")
    assert version.startswith("3.11.")


def test_redis_is_debians_redis_7_with_an_append_only_file_on_its_volume(
    stack: ComposeProject,
) -> None:
    def redis_cli(*args: str) -> str:
        return stack.run("exec", "-T", "redis", "redis-cli", *args).stdout

    assert "redis_version:7." in redis_cli("info", "server")
    assert redis_cli("config", "get", "appendonly").split() == ["appendonly", "yes"]
    assert redis_cli("config", "get", "dir").split() == ["dir", "/data"]
    mounts = {m["Destination"]: m for m in stack.inspect("redis")["Mounts"]}
    assert mounts["/data"]["Type"] == "volume"
    assert mounts["/data"]["Name"].endswith("_redis-data")


def test_redis_and_the_api_refuse_callers_without_their_secret(
    stack: ComposeProject, api: Api
) -> None:
    anonymous = stack.run("exec", "-T", "redis", "env", "-u", "REDISCLI_AUTH", "redis-cli",
                          "ping", check=False)
    assert "NOAUTH" in anonymous.stdout + anonymous.stderr
    answer = requests.get(api.base_url + "/api/jobs/", timeout=30)
    assert answer.status_code == 401 and answer.json()["error"] == "authentication_required"
    assert requests.get(api.base_url + "/api/health/", timeout=30).status_code == 200


# --- the README's three batches --------------------------------------------------------------


@pytest.mark.parametrize("mode", ["threading", "multiprocessing", "distributed"])
def test_readme_batch_curl_processes_the_samples(api: Api, mode: str) -> None:
    # Given the stack, when the README's curl command posts the batch in this mode
    answer = curl_post(api, f"/api/process-batch/{mode}/", README_BATCH)
    # Then every sample image is processed (the distributed mode by the worker containers)
    job = answer if mode != "distributed" else finished_job(api, answer["id"])
    assert job["status"] == "completed", job
    assert job["total"] == SAMPLE_COUNT
    assert all(r.get("output_url") for r in job["results"]), job["results"]
    # and the API serves an output written by a worker: the media volume is shared.
    first = api.session.get(job["results"][0]["output_url"], timeout=30)
    assert first.status_code == 200 and len(first.content) > 1000, first.status_code
    if mode == "distributed":
        assert {r["worker"] for r in job["results"]} <= set(WORKERS)


# --- faults -------------------------------------------------------------------------------


def test_stopping_a_worker_mid_batch_lets_the_batch_finish_and_start_brings_it_back(
    all_workers_healthy: ComposeProject, api: Api
) -> None:
    stack = all_workers_healthy
    # Given a long batch that worker-2 has started working on, a task of it in hand
    job_id = submit(api, {**HEAVY, "images": sample_ids(api) * 12})
    before = worker_info(api, "worker-2")["tasks_completed"]
    wait_until(lambda: worker_info(api, "worker-2")["tasks_completed"] > before, 60, 0.2,
               message="worker-2 to complete a task of the batch")
    held = wait_until(lambda: task_in_hand(api, "worker-2", job_id), 60, 0.1,
                      message="worker-2 to hold a task of the batch")

    # When worker-2 is stopped with docker-compose (SIGTERM to its PID 1, the worker alone;
    # then up to 30 s grace)
    stack.run("stop", "worker-2", timeout=60)

    # Then it finished its task and exited 0, the batch was not done yet, and the API shows
    # worker-2 stopped (deregistered) or dead
    state = stack.state("worker-2")
    assert (state["Status"], state["ExitCode"]) == ("exited", 0), state
    progress = api.get(f"/api/jobs/{job_id}/")["progress"]
    assert progress["completed"] < 96, "the batch ended before the stop: make it longer"
    assert api.worker_statuses()["worker-2"] in ("stopped", "dead")
    # and the other workers finish the batch: every task completed, counts add up
    job = finished_job(api, job_id)
    assert job["status"] == "completed", job["progress"]
    assert job["progress"]["completed"] == job["total"] == 96
    assert api.worker_statuses()["worker-2"] in ("stopped", "dead")  # it stayed stopped
    assert_counts_add_up(api)
    # and the task it held was its own to finish, on attempt 1: its task process was not
    # stopped under it (task_process_died, redone as attempt 2); nothing was redone at all
    [mine] = [r for r in job["results"] if r["task_id"] == held]
    assert (mine["state"], mine["worker"], mine["attempts"]) == ("completed", "worker-2", 1), mine
    assert [r for r in job["results"] if r["attempts"] != 1] == []

    # When it is started again, it is healthy for compose and for the API under the same id
    stack.run("start", "worker-2")
    stack.wait_healthy(["worker-2"], 90)
    wait_until(lambda: api.worker_statuses().get("worker-2") == "healthy", 30, 0.5,
               message="worker-2 healthy again in /api/workers/status/")


def test_a_worker_killed_while_holding_a_task_loses_nothing(
    all_workers_healthy: ComposeProject, api: Api
) -> None:
    stack = all_workers_healthy
    reclaimed_before = queue_counts(api)["reclaimed"]
    # Given a batch and worker-1 in the middle of one of its tasks
    job_id = submit(api, {**HEAVY, "images": sample_ids(api) * 6})

    seen: list[dict[str, Any]] = []

    def holding() -> str | None:
        info = worker_info(api, "worker-1")
        seen.append({w["id"]: (w["status"], w.get("current_task"))
                     for w in api.get("/api/workers/status/")["workers"]})
        task = info.get("current_task") or ""
        return task if task.startswith(job_id) else None

    try:
        wait_until(holding, 60, 0.1, message="worker-1 to hold a task of the batch")
    except BaseException:
        print("status samples:", seen[::20], "job:", api.get(f"/api/jobs/{job_id}/")["progress"])
        print(stack.run("logs", "--tail", "40", "worker-1", check=False).stdout[-6000:])
        raise

    # When it is killed outright
    stack.run("kill", "-s", "SIGKILL", "worker-1")
    killed = wait_until(lambda: stack.state("worker-1")["Status"] == "exited"
                        and stack.state("worker-1"), 30, 0.2, message="worker-1 to exit")
    assert killed["ExitCode"] == 137, killed

    # Then it shows dead, its task is handed to another worker after the lease, and the job
    # completes with nothing lost: every task completed once, none dead-lettered
    wait_until(lambda: api.worker_statuses()["worker-1"] == "dead", HEARTBEAT_TIMEOUT_S + 10,
               0.5, message="worker-1 dead in /api/workers/status/")
    job = finished_job(api, job_id)
    assert job["status"] == "completed", job["progress"]
    assert job["progress"] == {"completed": 48, "failed": 0, "cancelled": 0, "pending": 0,
                               "running": 0, "delayed": 0}
    assert Counter(r["state"] for r in job["results"]) == {"completed": 48}
    redelivered = [r for r in job["results"] if r["attempts"] >= 2]
    assert redelivered, "no task was redelivered"
    assert all(r["worker"] != "worker-1" for r in redelivered), redelivered
    queue = assert_counts_add_up(api)
    assert queue["reclaimed"] > reclaimed_before, queue
    assert queue["dead_lettered"] == 0, queue
    # A kill is a request, like stop: docker leaves it down (all_workers_healthy starts it
    # again for the next test).
    assert stack.state("worker-1")["Status"] == "exited"


def test_a_crashed_worker_is_restarted_by_its_restart_policy(
    all_workers_healthy: ComposeProject, api: Api
) -> None:
    stack = all_workers_healthy
    state = stack.state("worker-3")
    restarts = stack.inspect("worker-3")["RestartCount"]
    # Given worker-3 running, when its process dies without docker being asked (as in an
    # out-of-memory kill): SIGKILL to the container's main process, by its PID on this host
    os.kill(int(state["Pid"]), signal.SIGKILL)
    # Then docker restarts it (restart: unless-stopped) and it rejoins under its id
    wait_until(lambda: stack.inspect("worker-3")["RestartCount"] > restarts, 60, 0.2,
               message="docker to restart worker-3")
    stack.wait_healthy(["worker-3"], 90)
    wait_until(lambda: api.worker_statuses().get("worker-3") == "healthy", 30, 0.5,
               message="worker-3 healthy again in /api/workers/status/")
    assert stack.state("worker-3")["Pid"] != state["Pid"]


def test_a_redis_restart_mid_batch_degrades_the_api_and_loses_no_task(
    all_workers_healthy: ComposeProject, api: Api
) -> None:
    stack = all_workers_healthy
    # Given a batch in progress
    job_id = submit(api, {**HEAVY, "images": sample_ids(api) * 4})
    wait_until(lambda: api.get(f"/api/jobs/{job_id}/")["progress"]["completed"] >= 4, 60, 0.2,
               message="the batch to be under way")

    # When Redis is stopped (SIGTERM: it writes its append-only file and exits)
    stack.run("stop", "redis")
    try:
        # Then the API stays ready but degraded, the distributed mode answers 503, and the
        # threading mode still works
        health = api.session.get(api.base_url + "/api/health/", timeout=30)
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "degraded", health.json()
        refused = api.post("/api/process-batch/distributed/", json.loads(README_BATCH))
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "redis_unavailable"
        local = api.post("/api/process-batch/threading/", json.loads(README_BATCH))
        assert local.status_code == 200 and local.json()["status"] == "completed", local.text
    finally:
        stack.run("start", "redis")
    stack.wait_healthy(["redis"], 60)

    # and once it is back, from its volume, the workers reconnect and finish every task once
    job = finished_job(api, job_id)
    assert job["status"] == "completed", job["progress"]
    assert job["progress"]["completed"] == job["total"] == 32
    assert_counts_add_up(api)


def test_everything_comes_down_with_its_volumes(stack: ComposeProject) -> None:
    # The last test: `down -v` removes every container and volume of the project (the stack
    # fixture checks the same at teardown, whatever happened before).
    assert len(stack.containers()) == 5
    assert len(stack.volumes()) == 3
    started = time.monotonic()
    stack.run("down", "-v", "--remove-orphans", "--timeout", "30")
    assert stack.containers() == []
    assert stack.volumes() == []
    assert time.monotonic() - started < 60
