"""Who stops the task in hand: the worker, and only the worker.

A worker leads a process group of its own, with its task processes in it, as the PID 1 of a
container or a supervisord program does. SIGTERM to the worker alone (`docker stop`, a
Kubernetes pod's termination, `make worker-stop`) and SIGTERM to the whole group (a process
manager told to stop the group, `kill -TERM -<pgid>`) both end the same way: the task in
hand completes on its first attempt, then the worker stops its task process itself and exits
0. tests/deploy/test_stop_signal.py checks that the container path sends SIGTERM to PID 1
only; tests/integration/test_local_cluster_stop.py runs supervisord's paths.
"""

from __future__ import annotations

import os
import signal

import pytest

from distributed.ids import new_job_id
from distributed.jobs import get_job
from tests.support.tasks import sleep_tasks
from tests.support.workers import WorkerProcess, process_group, task_processes, wait_until

pytestmark = pytest.mark.slow


def task_state(client, config, job_id: str) -> dict:
    return get_job(client, config, job_id)["tasks"][0]


def task_process_running(worker: WorkerProcess, client, config, job_id: str) -> int:
    """Once the job's task is in hand: the PID of the task process running it."""
    wait_until(lambda: task_state(client, config, job_id)["state"] == "running", 30,
               message="the task to start")
    [pid] = wait_until(lambda: task_processes(worker.pid), 30, message="the task process")
    return pid


def assert_completed_on_first_attempt(client, config, job_id: str, worker: WorkerProcess):
    task = task_state(client, config, job_id)
    assert (task["state"], task["worker"], task["attempts"]) == ("completed", worker.worker_id, 1)
    assert task["error"] is None and task["last_error"] is None, task
    assert worker.events("task.retry") == [] and "task_process_died" not in worker.log()
    [done] = worker.events("task.done")
    assert done["attempt"] == 1


def test_sigterm_to_the_worker_alone_finishes_the_task_on_attempt_1_and_stops_its_process(
    queue, redis_client, queue_config, start_worker
):
    # Given a worker leading its process group, a 3 s task in hand in its task process
    job_id = new_job_id()
    w1 = start_worker("w1", new_session=True)
    queue.submit(job_id=job_id, priority="normal", messages=sleep_tasks(job_id, 3.0),
                 job_fields={"mode": "distributed"})
    child = task_process_running(w1, redis_client, queue_config, job_id)
    assert process_group(child) == process_group(w1.pid) == w1.pid  # one intact group
    # When the worker alone gets SIGTERM (what docker sends to a container's PID 1)
    w1.signal(signal.SIGTERM)
    # Then it finishes the task on its first attempt, exits 0 and leaves nothing behind
    assert w1.wait(30) == 0, w1.log()
    assert_completed_on_first_attempt(redis_client, queue_config, job_id, w1)
    assert process_group(child) is None


def test_sigterm_to_the_whole_process_group_leaves_the_task_process_to_its_worker(
    queue, redis_client, queue_config, start_worker
):
    # Given a worker leading its process group, a 3 s task in hand in its task process
    job_id = new_job_id()
    w1 = start_worker("w1", new_session=True)
    queue.submit(job_id=job_id, priority="normal", messages=sleep_tasks(job_id, 3.0),
                 job_fields={"mode": "distributed"})
    child = task_process_running(w1, redis_client, queue_config, job_id)
    # When SIGTERM goes to every process of the group
    os.killpg(w1.pid, signal.SIGTERM)
    # Then the task process ignores it (the worker began its warm shutdown, the task runs on)
    wait_until(lambda: w1.logged("worker.stopping"), 20, message="w1 to begin stopping")
    assert process_group(child) == w1.pid
    assert task_state(redis_client, queue_config, job_id)["state"] == "running"
    # and the task completes on its first attempt before the worker exits 0
    assert w1.wait(30) == 0, w1.log()
    assert_completed_on_first_attempt(redis_client, queue_config, job_id, w1)
    assert process_group(child) is None


def test_past_the_grace_period_the_worker_kills_its_task_process_and_records_no_verdict(
    queue, redis_client, queue_config, start_worker
):
    # Given a worker with a 1 s grace period and a 60 s task in hand
    job_id = new_job_id()
    w1 = start_worker("w1", new_session=True, SHUTDOWN_GRACE_SECONDS="1")
    queue.submit(job_id=job_id, priority="normal", messages=sleep_tasks(job_id, 60.0),
                 job_fields={"mode": "distributed"})
    child = task_process_running(w1, redis_client, queue_config, job_id)
    # When it is asked to stop
    w1.signal(signal.SIGTERM)
    # Then it exits 3 once the grace period is over, without waiting for the task process
    # (which ignores SIGTERM): it killed it. The task is left as it was, for its lease to
    # expire and another worker to redo (tests/integration/test_workers.py): no failure is
    # recorded against it.
    assert w1.wait(30) == 3, w1.log()
    assert process_group(child) is None
    task = task_state(redis_client, queue_config, job_id)
    assert (task["state"], task["attempts"], task["error"]) == ("running", 1, None), task
    assert w1.events("task.retry") == [] and w1.events("task.dead_lettered") == []
