"""Every task is bounded in a real worker process: past its time limit it is killed, past its
memory limit it fails, and the worker carries on. A task's process dies with its worker."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from PIL import Image

from distributed.ids import new_job_id
from distributed.jobs import get_job
from distributed.messages import TaskMessage
from imaging.codecs import inspect_image
from imaging.storage import Storage
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import sleep_tasks
from tests.support.workers import wait_until


def submit(queue, messages: list[TaskMessage]) -> str:
    job_id = messages[0].job_id
    queue.submit(job_id=job_id, priority="normal", messages=messages,
                 job_fields={"mode": "distributed"})
    return job_id


def finished(client, config, job_id: str):
    job = get_job(client, config, job_id)
    return job if job and job["status"] not in ("queued", "running") else None


def children(pid: int) -> list[int]:
    """The worker's task processes (multiprocessing's resource tracker aside)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline:
                found.append(int(child))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def big_png(media: Path, side: int) -> str:
    """A side x side RGBA PNG of one colour: a few KB on disk, side^2 x 4 bytes decoded."""
    path = media / "big.png"
    Image.new("RGBA", (side, side), (10, 200, 30, 255)).save(path, "PNG")
    data = path.read_bytes()
    info = inspect_image(data, max_bytes=len(data), max_pixels=10**9)
    return Storage(media).save_upload(data, info, "big.png")


def test_a_task_past_its_time_limit_is_stopped_and_dead_lettered_without_retry(
    queue, redis_client, queue_config, start_worker
):
    # Given a worker whose tasks may run 1 s
    w1 = start_worker("w1", TASK_TIME_LIMIT_SECONDS="1")
    # When a task needs 30 s, followed by one that needs 0.1 s
    slow = submit(queue, sleep_tasks(new_job_id(), 30))
    quick = submit(queue, sleep_tasks(new_job_id(), 0.1))

    # Then the slow one is dead-lettered at once as time_limit_exceeded, after one attempt
    job = wait_until(lambda: finished(redis_client, queue_config, slow), 30,
                     message="the slow task to end")
    [task] = job["tasks"]
    assert task["state"] == "dead" and task["attempts"] == 1
    assert task["error"]["kind"] == "time_limit_exceeded"
    # and the worker carries on with the next task, in a fresh task process
    next_job = wait_until(lambda: finished(redis_client, queue_config, quick), 30,
                          message="the next task")
    assert next_job["status"] == "completed", (next_job["tasks"], w1.log())
    assert w1.proc.poll() is None
    assert assert_counts_add_up(redis_client, queue_config)["dead"] == 1


def test_a_task_over_the_memory_limit_fails_and_the_others_complete(
    queue, redis_client, queue_config, start_worker
):
    media = start_worker.media_root
    big = big_png(media, 6000)  # 144 MB decoded
    small = Storage(media).sample_ids()[0]
    # Given a worker whose tasks may allocate 100 MiB
    w1 = start_worker("w1", WORKER_MEMORY_LIMIT_MB="100", MAX_IMAGE_PIXELS="100000000")
    job_id = new_job_id()
    steps = ({"filter": "invert", "params": {}},)
    messages = [TaskMessage(kind="image", job_id=job_id, index=i, image_id=image, steps=steps,
                            output_format="png") for i, image in enumerate([small, big, small])]

    # When one of three images needs more than that
    submit(queue, messages)

    # Then that task is dead-lettered as memory_limit_exceeded, the others complete
    job = wait_until(lambda: finished(redis_client, queue_config, job_id), 60,
                     message="the job to end")
    states = [(t["state"], (t["error"] or {}).get("kind")) for t in job["tasks"]]
    assert states == [("completed", None), ("dead", "memory_limit_exceeded"),
                      ("completed", None)]
    # and the worker is still there, healthy enough to take more work
    assert w1.proc.poll() is None
    again = submit(queue, sleep_tasks(new_job_id(), 0.1))
    assert wait_until(lambda: finished(redis_client, queue_config, again), 30,
                      message="one more task")["status"] == "completed"


def test_a_killed_task_process_is_reported_and_replaced(
    queue, redis_client, queue_config, start_worker
):
    w1 = start_worker("w1")
    job_id = submit(queue, sleep_tasks(new_job_id(), 30))
    child = wait_until(lambda: children(w1.pid), 30, message="the task process")[0]
    wait_until(lambda: get_job(redis_client, queue_config, job_id)["tasks"][0]["state"]
               == "running", 30, message="the task to start")

    # When the kernel (here: the test) kills the task's process, as the OOM killer would
    os.kill(child, signal.SIGKILL)

    job = wait_until(lambda: finished(redis_client, queue_config, job_id), 30,
                     message="the task to end")
    assert job["tasks"][0]["error"]["kind"] == "memory_limit_exceeded"
    next_job = submit(queue, sleep_tasks(new_job_id(), 0.1))
    assert wait_until(lambda: finished(redis_client, queue_config, next_job), 30,
                      message="the next task")["status"] == "completed"
    assert w1.proc.poll() is None


def test_a_task_process_dies_with_its_worker(queue, redis_client, queue_config, start_worker):
    w1 = start_worker("w1")
    job_id = submit(queue, sleep_tasks(new_job_id(), 30))
    [child] = wait_until(lambda: children(w1.pid), 30, message="the task process")
    wait_until(lambda: get_job(redis_client, queue_config, job_id)["tasks"][0]["state"]
               == "running", 30, message="the task to start")

    w1.signal(signal.SIGKILL)
    w1.wait(10)

    wait_until(lambda: not alive(child), 10, message="the task process to die with its worker")


def test_noop_tasks_run_without_a_task_process(queue, redis_client, queue_config,
                                               start_worker):
    w1 = start_worker("w1")
    job_id = new_job_id()
    submit(queue, [TaskMessage(kind="noop", job_id=job_id, index=i) for i in range(50)])
    assert wait_until(lambda: finished(redis_client, queue_config, job_id), 30,
                      message="the no-ops")["status"] == "completed"
    assert children(w1.pid) == []
