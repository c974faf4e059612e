"""The distributed contract with a real Redis server and real worker processes.

Workers run as ``python -m workers`` subprocesses with short timings (heartbeat 0.5 s, lease
1.5 s, from the ``queue_config`` fixture); fault tests really send SIGKILL/SIGSTOP/SIGTERM.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import signal
import threading
import time
from pathlib import Path

import pytest

from distributed.ids import new_job_id
from distributed.jobs import get_job
from distributed.messages import TaskMessage, TaskResult
from distributed.queue import Queue
from distributed.status import cluster_status
from imaging.codecs import encode_image, inspect_image
from imaging.samples import make_scene
from imaging.storage import Storage
from tests.support.redis import assert_counts_add_up
from tests.support.tasks import noop_tasks, sleep_tasks, submit_tasks
from tests.support.workers import wait_until

pytestmark = pytest.mark.slow

PIPELINE = [{"filter": "sharpen", "params": {"intensity": 2.0}},
            {"filter": "edges", "params": {"threshold1": 50.0, "threshold2": 150.0}}]


def upload_image(media_root: Path, width: int = 320, height: int = 240, seed: int = 0) -> str:
    data = encode_image(make_scene(width, height, seed), "png")
    info = inspect_image(data, max_bytes=10**8, max_pixels=10**8)
    return Storage(media_root).save_upload(data, info, "scene.png")


def image_tasks(job_id: str, image_ids: list[str]) -> list[TaskMessage]:
    return [TaskMessage(kind="image", job_id=job_id, index=i, image_id=image_id,
                        steps=tuple(PIPELINE), output_format="png", quality=90)
            for i, image_id in enumerate(image_ids)]


def submit(queue: Queue, job_id: str, messages: list[TaskMessage],
           priority: str = "normal") -> str:
    return queue.submit(job_id=job_id, priority=priority, messages=messages,
                        job_fields={"mode": "distributed"}).job_id


def finished(client, config, job_id: str):
    job = get_job(client, config, job_id)
    return job if job and job["status"] not in ("queued", "running") else None


def task_state(client, config, job_id: str, index: int = 0) -> dict:
    return get_job(client, config, job_id)["tasks"][index]


def test_three_workers_complete_sixty_tasks_and_share_them(
    queue, redis_client, queue_config, start_worker
):
    job_sixty = new_job_id()
    # Given three workers and 60 image tasks
    workers = [start_worker(f"w{i}") for i in (1, 2, 3)]
    media = start_worker.media_root
    images = [upload_image(media, seed=s) for s in range(3)]
    submit(queue, job_sixty, image_tasks(job_sixty, [images[i % 3] for i in range(60)]))
    # When they drain the queue
    job = wait_until(lambda: finished(redis_client, queue_config, job_sixty), 90,
                     message="60 tasks to finish")
    # Then every task completed exactly once, each worker did some, and the counts add up
    assert job["status"] == "completed", job["counts"]
    by_worker = collections.Counter(t["result"].worker for t in job["tasks"])
    assert set(by_worker) == {"w1", "w2", "w3"}, by_worker
    assert sum(by_worker.values()) == 60
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["completed"] == 60 and stats.get("fenced", 0) == 0
    for t in job["tasks"]:
        assert (media / t["result"].output_key).is_file()
    status = cluster_status(redis_client, queue_config)
    done = {w["id"]: w["tasks_completed"] for w in status["workers"]}
    wait_until(lambda: sum(w["tasks_completed"] for w in cluster_status(
        redis_client, queue_config)["workers"]) == 60, 10, message="heartbeat counts")
    assert all(w.proc.poll() is None for w in workers), done


def test_idle_workers_share_a_slow_batch_after_a_quick_one(
    queue, redis_client, queue_config, start_worker
):
    # Given three workers whose fetch size grew on quick tasks, then idle (blocked on the
    # doorbell)
    for i in (1, 2, 3):
        start_worker(f"w{i}")
    quick = submit_tasks(queue, 600)
    wait_until(lambda: finished(redis_client, queue_config, quick), 60, message="quick tasks")
    time.sleep(1.0)
    # When six slow tasks arrive at once
    slow = submit_tasks(queue, 6, seconds=0.6)
    job = wait_until(lambda: finished(redis_client, queue_config, slow), 60,
                     message="slow tasks")
    # Then every worker takes some: a woken worker takes one task, not a prefetch's worth
    by_worker = collections.Counter(t["result"].worker for t in job["tasks"])
    assert set(by_worker) == {"w1", "w2", "w3"}, by_worker
    assert max(by_worker.values()) <= 3, by_worker
    assert_counts_add_up(redis_client, queue_config)


def test_task_of_a_killed_worker_completes_on_another_worker(
    queue, redis_client, queue_config, start_worker
):
    job_kill = new_job_id()
    # Given two workers and one long task
    workers = {w.worker_id: w for w in (start_worker("w1"), start_worker("w2"))}
    submit(queue, job_kill, sleep_tasks(job_kill, 2.0))
    holder = wait_until(lambda: task_state(redis_client, queue_config, job_kill)["worker"],
                        20, message="a worker to take the task")
    # When the worker holding it is SIGKILLed
    killed_at = time.monotonic()
    workers[holder].signal(signal.SIGKILL)
    job = wait_until(lambda: finished(redis_client, queue_config, job_kill), 30,
                     message="the task to complete elsewhere")
    recovered_s = time.monotonic() - killed_at
    # Then the other worker completed it, once, on the second attempt
    [task] = job["tasks"]
    other = ({"w1", "w2"} - {holder}).pop()
    assert task["state"] == "completed" and task["worker"] == other
    assert task["attempts"] == 2
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["completed"] == 1 and stats["reclaimed"] == 1
    # recovery = lease + reclaim tick + the 2 s of work, with slack for a loaded machine
    assert recovered_s < queue_config.lease_s + 2.0 + 15


def test_late_completion_of_a_paused_worker_is_fenced(
    queue, redis_client, queue_config, start_worker
):
    job_pause = new_job_id()
    w1 = start_worker("w1")
    submit(queue, job_pause, sleep_tasks(job_pause, 1.0))
    wait_until(lambda: task_state(redis_client, queue_config, job_pause)["worker"] == "w1", 20,
               message="w1 to take the task")
    # When w1 freezes past its lease and w2 finishes the task
    w1.signal(signal.SIGSTOP)
    start_worker("w2")
    job = wait_until(lambda: finished(redis_client, queue_config, job_pause), 30,
                     message="w2 to finish the task")
    assert job["tasks"][0]["worker"] == "w2"
    # Then w1's completion after SIGCONT is refused and not counted
    w1.signal(signal.SIGCONT)
    wait_until(lambda: w1.logged("task.fenced"), 20, message="w1's fenced completion")
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["completed"] == 1 and stats["fenced"] >= 1
    assert get_job(redis_client, queue_config, job_pause)["tasks"][0]["worker"] == "w2"
    # and w1 rejoins as a healthy worker
    wait_until(lambda: {w["id"]: w["status"] for w in cluster_status(
        redis_client, queue_config)["workers"]}.get("w1") == "healthy", 10,
        message="w1 healthy again")


def test_sigterm_finishes_the_task_in_hand_deregisters_and_exits_zero(
    queue, redis_client, queue_config, start_worker
):
    job_term = new_job_id()
    w1 = start_worker("w1")
    submit(queue, job_term, sleep_tasks(job_term, 1.5))
    wait_until(lambda: task_state(redis_client, queue_config, job_term)["state"] == "running",
               20, message="the task to start")
    w1.signal(signal.SIGTERM)
    assert w1.wait(30) == 0, w1.log()
    task = task_state(redis_client, queue_config, job_term)
    assert task["state"] == "completed" and task["worker"] == "w1" and task["attempts"] == 1
    [w] = cluster_status(redis_client, queue_config)["workers"]
    assert w["status"] == "stopped"
    assert w1.logged("worker.stop")


def test_second_signal_stops_at_once_and_the_task_is_redelivered(
    queue, redis_client, queue_config, start_worker
):
    job_cold = new_job_id()
    w1 = start_worker("w1")
    submit(queue, job_cold, sleep_tasks(job_cold, 30))
    wait_until(lambda: task_state(redis_client, queue_config, job_cold)["state"] == "running",
               20, message="the task to start")
    w1.signal(signal.SIGTERM)
    # The second signal goes once the first has been handled: two SIGTERMs pending at once
    # are one to the process (a loaded machine may not run its handler within 0.3 s).
    wait_until(lambda: w1.logged("worker.stopping"), 20, message="w1 to begin stopping")
    w1.signal(signal.SIGTERM)
    assert w1.wait(10) != 0
    assert w1.logged("worker.cold_shutdown")
    # The task is still open and will be reclaimed by the next worker
    start_worker("w2")
    wait_until(lambda: task_state(redis_client, queue_config, job_cold)["worker"] == "w2", 20,
               message="w2 to take over the task")
    assert_counts_add_up(redis_client, queue_config)


def inject_payload(client, config, task_id: str, payload: dict) -> None:
    """Overwrite a queued task's payload straight in Redis, as a foreign writer could."""
    client.hset(config.keys.task(task_id), "payload", json.dumps(payload))


def media_files(media: Path) -> dict[str, bytes]:
    return {str(p.relative_to(media)): p.read_bytes() for p in sorted(media.rglob("*"))
            if p.is_file()}


def test_bad_tasks_are_dead_lettered_and_the_worker_keeps_going(
    queue, redis_client, queue_config, start_worker
):
    # Given a job whose first two payloads were garbled in Redis and whose third names an
    # image that does not exist
    job_bad = new_job_id()
    messages = noop_tasks(job_bad, 4)
    messages[2] = TaskMessage(kind="image", job_id=job_bad, index=2,
                              image_id="img_" + "0" * 32, steps=tuple(PIPELINE))
    submit(queue, job_bad, messages)
    inject_payload(redis_client, queue_config, f"{job_bad}.0",
                   {"kind": "no-such-kind", "job_id": job_bad, "index": 0})
    inject_payload(redis_client, queue_config, f"{job_bad}.1",
                   {"kind": "image", "job_id": job_bad, "index": 1})
    # When a worker runs it
    w1 = start_worker("w1")
    job = wait_until(lambda: finished(redis_client, queue_config, job_bad), 30,
                     message="the job to finish")
    # Then the bad tasks are dead-lettered at once and the good one completes
    states = [t["state"] for t in job["tasks"]]
    assert states == ["dead", "dead", "dead", "completed"]
    kinds = [t["error"]["kind"] for t in job["tasks"][:3]]
    assert kinds == ["invalid_payload", "invalid_payload", "image_not_found"]
    assert all(t["attempts"] == 1 for t in job["tasks"])  # permanent: no retry
    assert w1.proc.poll() is None
    assert assert_counts_add_up(redis_client, queue_config)["dead"] == 3


def test_payload_naming_a_path_is_dead_lettered_and_changes_no_file(
    queue, redis_client, queue_config, start_worker
):
    # Given another job's finished output, and a job whose payloads were rewritten in Redis:
    # one names that output as its path, one has an unknown version, one is another task's
    media = start_worker.media_root
    image = upload_image(media)
    other = new_job_id()
    victim = media / "outputs" / other / f"0000-{image}.png"
    victim.parent.mkdir(parents=True)
    victim.write_bytes(b"the other job's result")
    job = new_job_id()
    submit(queue, job, image_tasks(job, [image] * 3))
    good = json.loads(image_tasks(job, [image])[0].to_json())
    inject_payload(redis_client, queue_config, f"{job}.0",
                   {**good, "output_key": str(victim.relative_to(media))})
    inject_payload(redis_client, queue_config, f"{job}.1", {**good, "index": 1, "version": 99})
    inject_payload(redis_client, queue_config, f"{job}.2", {**good, "job_id": other})
    before = media_files(media)
    # When a worker runs the job
    w1 = start_worker("w1")
    record = wait_until(lambda: finished(redis_client, queue_config, job), 30,
                        message="the job to finish")
    # Then each task is dead-lettered as invalid_payload after one attempt
    assert record["status"] == "failed"
    for task in record["tasks"]:
        assert task["state"] == "dead" and task["attempts"] == 1
        assert task["error"]["kind"] == "invalid_payload"
    assert "output_key" in record["tasks"][0]["error"]["message"]
    assert "version 99" in record["tasks"][1]["error"]["message"]
    assert assert_counts_add_up(redis_client, queue_config)["dead"] == 3
    # and no file changed, its job's outputs included
    assert media_files(media) == before
    dead = w1.events("task.dead_lettered")
    assert len(dead) == 3 and all(e["error"].startswith("invalid_payload:") for e in dead)


def test_worker_log_lines_carry_the_request_id_of_the_task(
    queue, redis_client, queue_config, start_worker
):
    job = new_job_id()
    message = TaskMessage(kind="noop", job_id=job, index=0, request_id="req-4242")
    submit(queue, job, [message])
    w1 = start_worker("w1")
    wait_until(lambda: finished(redis_client, queue_config, job), 30, message="the task")
    wait_until(lambda: w1.logged("task.done"), 10, message="the log line")
    [line] = w1.events("task.done")
    assert line["task_id"] == f"{job}.0" and line["request_id"] == "req-4242"


def test_transient_error_is_retried_with_backoff_then_dead_lettered(
    queue, redis_client, queue_config, start_worker
):
    job_flaky = new_job_id()
    # Given storage that fails to write this job's outputs (a file where its folder goes)
    start_worker("w1")
    media = start_worker.media_root
    image = upload_image(media)
    (media / "outputs").mkdir(exist_ok=True)
    (media / "outputs" / job_flaky).write_text("not a directory")
    submit(queue, job_flaky, image_tasks(job_flaky, [image]))
    job = wait_until(lambda: finished(redis_client, queue_config, job_flaky), 40,
                     message="the task to be dead-lettered")
    [task] = job["tasks"]
    assert task["state"] == "dead"
    assert task["attempts"] == queue_config.max_attempts
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["retried"] == queue_config.max_retries


def test_redis_restart_mid_job_loses_nothing(
    queue, redis_client, redis_server, queue_config, start_worker
):
    job_outage = new_job_id()
    start_worker("w1")
    start_worker("w2")
    submit(queue, job_outage, sleep_tasks(job_outage, 0.1, 40))
    wait_until(lambda: get_job(redis_client, queue_config, job_outage)["counts"]["completed"]
               >= 5, 30, message="some progress")
    # When Redis goes away for a while and comes back (append-only file on)
    redis_server.stop()
    time.sleep(2.0)
    redis_server.start()
    job = wait_until(lambda: finished(redis_client, queue_config, job_outage), 60,
                     message="the job to complete after the restart")
    # Then the job completed with nothing lost and nothing counted twice
    assert job["status"] == "completed", job["counts"]
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["accepted"] == 40 and stats["completed"] == 40


def test_high_priority_runs_before_low_and_low_is_not_starved(
    queue, redis_client, queue_config, start_worker
):
    job_low = new_job_id()
    job_high = new_job_id()
    submit(queue, job_low, noop_tasks(job_low, 30), priority="low")
    submit(queue, job_high, noop_tasks(job_high, 30), priority="high")
    start_worker("w1", WORKER_PREFETCH="1")  # one task per fetch: the policy, fetch by fetch
    low = wait_until(lambda: finished(redis_client, queue_config, job_low), 30,
                     message="low job")
    high = get_job(redis_client, queue_config, job_high)
    high_done = sorted(t["finished_at_ms"] for t in high["tasks"])
    low_done = sorted(t["finished_at_ms"] for t in low["tasks"])
    # Most high-priority tasks finish before most low ones ...
    assert high_done[len(high_done) // 2] < low_done[len(low_done) // 2]
    # ... but low-priority work gets turns while high is still queued.
    assert low_done[0] < high_done[-1]


def test_worker_restarted_with_the_same_id_is_healthy_again(
    queue, redis_client, queue_config, start_worker
):
    w1 = start_worker("w1")
    w1.signal(signal.SIGKILL)
    w1.wait(10)
    wait_until(lambda: {w["id"]: w["status"] for w in cluster_status(
        redis_client, queue_config)["workers"]}.get("w1") == "dead", 10, message="w1 dead")
    restarted = start_worker("w1")
    # It registers before logging its start, so it is normally healthy at the first read;
    # the bound leaves room for a loaded machine delaying the read.
    w = wait_until(lambda: (lambda ws: ws[0] if ws and ws[0]["status"] == "healthy" else None)(
        cluster_status(redis_client, queue_config)["workers"]), 5, 0.02,
        message="w1 healthy after its restart")
    assert w["pid"] == restarted.pid


def test_worker_without_redis_url_exits_with_a_clear_message(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    run = subprocess.run([sys.executable, "-m", "workers"], env=env, capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 2
    assert "REDIS_URL is not set" in run.stderr and "Traceback" not in run.stderr


def test_healthcheck_follows_the_workers_own_heartbeat(start_worker, queue_config, tmp_path):
    import os
    import subprocess
    import sys

    health = tmp_path / "w1.health"
    w1 = start_worker("w1", WORKER_HEALTH_FILE=str(health))
    env = {**os.environ, "WORKER_HEALTH_FILE": str(health),
           "HEARTBEAT_INTERVAL_SECONDS": str(queue_config.heartbeat_interval_s)}

    def check() -> int:
        return subprocess.run([sys.executable, "-m", "workers", "healthcheck"], env=env,
                              capture_output=True, timeout=60).returncode

    wait_until(lambda: check() == 0, 10, message="a healthy probe")
    w1.signal(signal.SIGSTOP)  # no more heartbeats
    wait_until(lambda: check() == 1, 15, message="the probe to fail")
    w1.signal(signal.SIGCONT)
    wait_until(lambda: check() == 0, 10, message="the probe to pass again")


def test_grace_period_expiry_exits_3_and_leaves_the_task_to_be_redelivered(
    queue, redis_client, queue_config, start_worker
):
    job_grace = new_job_id()
    w1 = start_worker("w1", SHUTDOWN_GRACE_SECONDS="1")
    submit(queue, job_grace, sleep_tasks(job_grace, 60))
    wait_until(lambda: task_state(redis_client, queue_config, job_grace)["state"] == "running",
               20, message="the task to start")
    w1.signal(signal.SIGTERM)
    assert w1.wait(30) == 3, w1.log()
    start_worker("w2")
    wait_until(lambda: task_state(redis_client, queue_config, job_grace)["worker"] == "w2", 20,
               message="w2 to take over the task")


def test_worker_concurrency_runs_tasks_side_by_side(
    queue, redis_client, queue_config, start_worker
):
    job_pair = new_job_id()
    start_worker("w1", WORKER_CONCURRENCY="2")
    submit(queue, job_pair, sleep_tasks(job_pair, 1.0, 2))
    job = wait_until(lambda: finished(redis_client, queue_config, job_pair), 30,
                     message="both tasks")
    first, second = job["tasks"]
    # both ran at once: each started before the other finished
    assert first["started_at_ms"] < second["finished_at_ms"]
    assert second["started_at_ms"] < first["finished_at_ms"]
    assert {t["worker"] for t in job["tasks"]} == {"w1"}


def test_warm_shutdown_finishes_the_task_in_hand_and_hands_back_prefetched_ones(
    queue, redis_client, queue_config, start_worker
):
    job_quick = new_job_id()
    job_slow = new_job_id()
    # Given 15 quick tasks (the fetch size grows 1, 2, 4, 8 -> 16) and then 8 slow ones,
    # which the worker takes in one fetch
    submit(queue, job_quick, noop_tasks(job_quick, 15))
    submit(queue, job_slow, sleep_tasks(job_slow, 1.0, 8))
    w1 = start_worker("w1", WORKER_PREFETCH="16")
    wait_until(lambda: all(t["state"] == "running" for t in get_job(
        redis_client, queue_config, job_slow)["tasks"]), 20, message="the slow batch taken")
    # When it is asked to stop
    w1.signal(signal.SIGTERM)
    assert w1.wait(30) == 0, w1.log()
    # Then the task in hand completed and the 7 others are back in the queue, attempts unused
    tasks = get_job(redis_client, queue_config, job_slow)["tasks"]
    assert [t["state"] for t in tasks] == ["completed"] + ["pending"] * 7
    assert all(t["attempts"] == 0 for t in tasks[1:])
    assert len(w1.events("task.released")) == 7
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["pending:normal"] == 7 and stats["running"] == 0


def test_quick_tasks_never_report_a_false_lease_loss(
    redis_client, queue_config, start_worker
):
    # Given two workers draining 4,000 no-op tasks (leases renewed while tasks complete)
    workers = [start_worker("w1"), start_worker("w2")]
    big = Queue(redis_client, dataclasses.replace(queue_config, max_queued_tasks=100_000))
    jobs = [new_job_id() for _ in range(8)]
    for job in jobs:
        submit(big, job, noop_tasks(job, 500))
    # When they are done
    wait_until(lambda: all(finished(redis_client, queue_config, job) for job in jobs), 90,
               message="4,000 tasks to complete")
    # Then every task completed once and no lease was reported lost: none was
    stats = assert_counts_add_up(redis_client, queue_config)
    assert stats["completed"] == 4000 and stats.get("fenced", 0) == 0
    for worker in workers:
        assert "lease.lost" not in worker.log()


def test_lease_keeper_reports_only_leases_another_owner_took(
    queue, redis_client, queue_config, caplog
):
    from distributed.registry import Registry, WorkerInfo
    from workers.leases import LeaseKeeper
    from workers.outcomes import OutcomeRecorder
    from workers.state import WorkerState

    state = WorkerState("w1")
    info = WorkerInfo(id="w1", hostname="h", pid=1, version="0", concurrency=1, filters=(),
                      started_at_ms=0, instance="w1/a")
    keeper = LeaseKeeper(queue=queue, registry=Registry(redis_client, queue_config),
                         state=state, info=info, config=queue_config, health_file="",
                         stopping=threading.Event())
    recorder = OutcomeRecorder(queue=queue, state=state, config=queue_config,
                               force=threading.Event())
    job = new_job_id()
    submit(queue, job, noop_tasks(job, 3))
    done, retried, kept = queue.fetch(consumer="w1", owner="w1/a", count=3)
    state.hold([done, retried, kept])
    # Given a snapshot of the hand taken before two tasks ended (one completed, one failed,
    # retried and already running on another worker)
    snapshot = state.held()
    recorder.complete([(done, TaskResult(duration_ms=1.0, worker="w1", attempt=1), None)])
    recorder.fail(retried, kind="OSError", message="disk", permanent=False, duration_ms=1.0)
    wait_until(lambda: queue.promote_due() or None, 10, message="the retry to be due")
    [again] = queue.fetch(consumer="w2", owner="w2/b", count=1)
    assert again.task_id == retried.task_id
    # When the keeper renews that snapshot, nothing is lost
    with caplog.at_level(logging.WARNING, logger="workers.runtime"):
        assert keeper.renew(snapshot) == []
        queue.complete(again, TaskResult(duration_ms=1.0, worker="w2", attempt=2))
        # and when the task still in hand is taken over after its lease expired, it is
        time.sleep(queue_config.lease_s + 0.1)
        [taken] = queue.claim_expired(consumer="w2", owner="w2/b")
        assert taken.task_id == kept.task_id
        assert keeper.renew() == [kept]
    assert [r.message for r in caplog.records if "lease" in r.message] == ["lease.lost"]
    assert state.held() == []
