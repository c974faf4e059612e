"""``python -m tests.support.sandbox_probe boot|task``, run in a session of its own by
tests/workers/test_sandbox.py: a :class:`workers.sandbox.Sandbox` runs a 1 s sleep task, and
SIGTERM goes to the whole process group (this process ignores it, as a worker's handler
would) either the moment the task process exists (``boot``: it has not even reached its own
code) or while it runs the task (``task``: a first task has warmed it up). Prints one JSON
line: the task's result or error, and whether the same task process is still alive.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from distributed.ids import new_job_id
from distributed.messages import TaskMessage
from imaging.processing import Limits
from workers.sandbox import Sandbox

LIMITS = Limits(max_pixels=10**6, max_jpeg_scans=10, max_cost_ms=10**6, time_limit_s=30)


def task_process() -> int | None:
    """The sandbox's child: a child of this process, started by multiprocessing's spawn."""
    for thread in Path(f"/proc/{os.getpid()}/task").glob("*"):
        try:
            pids = [int(p) for p in (thread / "children").read_text().split()]
        except OSError:
            continue
        for pid in pids:
            try:
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:
                continue
    return None


def run_task(sandbox: Sandbox, seconds: float, outcome: dict[str, Any]) -> None:
    message = TaskMessage(kind="sleep", job_id=new_job_id(), index=0, seconds=seconds)
    request = {"payload": message.to_json(), "media_root": "/nonexistent", "limits": LIMITS,
               "colour_profile": "keep"}
    try:
        outcome["result"] = sandbox.run(request, time_limit_s=30, cancel=threading.Event())
    except Exception as exc:
        outcome["error"] = f"{type(exc).__name__}: {exc}"


def signal_the_group(when: str, seen: dict[str, Any]) -> None:
    deadline = time.monotonic() + 60
    while (child := task_process()) is None and time.monotonic() < deadline:
        time.sleep(0.001)
    seen["child"] = child
    if when == "task":
        time.sleep(0.3)  # the request is sent: the task is running in the child
    os.killpg(0, signal.SIGTERM)


def main(when: str) -> int:
    signal.signal(signal.SIGTERM, lambda *_: None)  # this process decides, like a worker
    # The task runs in the main thread: the task process dies with the thread that started
    # it (PR_SET_PDEATHSIG), which must outlive the check below.
    sandbox = Sandbox(memory_limit_mb=0, name="probe")
    if when == "task":
        run_task(sandbox, 0.0, {})
    seen: dict[str, Any] = {}
    signaller = threading.Thread(target=signal_the_group, args=(when, seen))
    signaller.start()
    outcome: dict[str, Any] = {}
    run_task(sandbox, 1.0, outcome)
    signaller.join(60)
    outcome["child_alive"] = seen["child"] is not None and task_process() == seen["child"]
    sandbox.close()
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
