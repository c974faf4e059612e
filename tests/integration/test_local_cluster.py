"""The README's fault-tolerance walkthrough, run through the make targets exactly as a user
would: `make run` (embedded Redis, gunicorn, 3 workers under supervisord), `make demo`, freeze
worker-3 mid-batch and watch it marked dead, kill worker-2 and watch supervision restart it,
the batch completes with the tasks taken over, thaw worker-3, stop worker-2 gracefully and
start it, drain worker-1 through the API and watch supervision leave it down, `make stop` and
nothing left behind."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import redis
import requests

from tests.support.cluster import alive, local_cluster, make, program_pids
from tests.support.workers import ROOT, wait_until

pytestmark = pytest.mark.slow
SEED = {"filters": ["sharpen", "edges"],
        "filter_params": {"sharpen": {"intensity": 3}, "edges": {"threshold1": 50,
                                                                "threshold2": 150}}}


@pytest.fixture
def cluster(tmp_path: Path):
    with local_cluster(tmp_path, workers=3) as running:
        yield running.base_url, running.env, running.proc, tmp_path


def statuses(base: str) -> dict[str, str]:
    body = requests.get(f"{base}/api/workers/status/", timeout=5).json()
    return {w["id"]: w["status"] for w in body["workers"]}


def test_fault_tolerance_walkthrough_through_the_make_targets(cluster):
    base, env, proc, tmp_path = cluster
    banner = (tmp_path / "make-run.log").read_text()
    assert f"{base}/api/docs/" in banner and "process-batch/distributed/" in banner
    wait_until(lambda: statuses(base) == {f"worker-{i}": "healthy" for i in (1, 2, 3)}, 30,
               message="three healthy workers")
    pids = [int(line.split("pid ")[1].split(",")[0])
            for line in make("ps", env=env).stdout.splitlines() if "RUNNING" in line]
    assert len(pids) == 5  # redis, api, 3 workers
    # The embedded Redis wants the password that only this user's files hold.
    assert "Auth         OFF" in banner
    conf = tmp_path / "var" / "redis" / "redis.conf"
    password = conf.read_text().split()[1]
    assert conf.stat().st_mode & 0o777 == 0o600 and password not in banner
    port = int(banner.split("embedded redis-server on 127.0.0.1:")[1].split()[0])
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port, socket_timeout=5).ping()
    assert redis.Redis(port=port, password=password, socket_timeout=5).ping()

    # `make demo` submits the walkthrough's long batch and follows it (a short one here).
    demo = subprocess.Popen(["make", "--no-print-directory", "demo", "DEMO_IMAGES=60"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = demo.stdout.readline() if demo.stdout else ""
        assert first.startswith("Submitted 60 images: "), first
        job_url = first.split(": ", 1)[1].strip()
        wait_until(lambda: requests.get(job_url, timeout=5).json()["progress"]["completed"] > 0,
                   30, message="the batch to start")

        # Freeze worker-3 mid-batch: it misses its heartbeats and shows as dead.
        assert make("worker-pause", "ID=worker-3", env=env).returncode == 0
        wait_until(lambda: statuses(base).get("worker-3") == "dead", 30, 0.2,
                   message="worker-3 marked dead")
        # Kill worker-2: supervision restarts it under the same id, with a new pid.
        old_pid = program_pids(env)["worker-2"]
        assert make("worker-kill", "ID=worker-2", env=env).returncode == 0
        wait_until(lambda: program_pids(env).get("worker-2") not in (None, old_pid), 30,
                   message="worker-2 restarted")
        wait_until(lambda: statuses(base).get("worker-2") == "healthy", 30,
                   message="the restarted worker-2 healthy")
        out, _ = demo.communicate(timeout=180)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, out
    assert " completed " in out.splitlines()[-1], out
    job = requests.get(job_url, timeout=5).json()
    assert job["status"] == "completed" and job["progress"]["completed"] == 60
    assert {r["worker"] for r in job["results"]} <= {"worker-1", "worker-2", "worker-3"}
    queue = requests.get(f"{base}/api/workers/status/", timeout=5).json()["queue"]
    assert queue["reclaimed"] >= 1  # the frozen and the killed worker's tasks were taken over

    # Thawed, worker-3 heartbeats again; stopped on purpose, worker-2 stays stopped.
    assert make("worker-resume", "ID=worker-3", env=env).returncode == 0
    wait_until(lambda: statuses(base).get("worker-3") == "healthy", 30,
               message="worker-3 healthy again")
    assert make("worker-stop", "ID=worker-2", env=env).returncode == 0
    assert statuses(base).get("worker-2") == "stopped"
    listing = make("ps", env=env)
    assert listing.returncode == 0, listing  # a stopped worker is reported, not an error
    assert any("worker-2" in line and "STOPPED" in line for line in listing.stdout.splitlines())
    assert make("worker-start", "ID=worker-2", env=env).returncode == 0
    wait_until(lambda: statuses(base).get("worker-2") == "healthy", 30,
               message="worker-2 healthy after a start")
    listing = make("ps", env=env)

    # Drained through the API, worker-1 finishes, exits 0, and supervision leaves it down
    # (autorestart=unexpected): the console's Drain button does the same POST.
    drained_pid = program_pids(env)["worker-1"]
    response = requests.post(f"{base}/api/workers/worker-1/drain/", timeout=5)
    assert response.status_code == 202, response.text
    wait_until(lambda: statuses(base).get("worker-1") == "stopped", 30,
               message="worker-1 drained")
    wait_until(lambda: not alive(drained_pid), 30, message="worker-1 to exit")
    time.sleep(2)  # an unexpected exit would be restarted within a second
    drained = [line for line in make("ps", env=env).stdout.splitlines() if "worker-1" in line]
    assert drained and "EXITED" in drained[0], drained
    assert "worker-1" not in program_pids(env)

    pids += [int(line.split("pid ")[1].split(",")[0])
             for line in listing.stdout.splitlines() if "RUNNING" in line]

    # make stop returns once everything has exited: `make stop && make run` finds no port in use.
    stopped = make("stop", env=env)
    assert stopped.returncode == 0, stopped
    assert "every process exited" in stopped.stdout
    assert [pid for pid in pids if alive(pid)] == []
    assert proc.wait(60) == 0
    again = make("stop", env=env)
    assert again.returncode == 0 and "not running" in again.stdout
    assert "not running" in make("ps", env=env).stdout
