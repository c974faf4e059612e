"""workers/sandbox.py: the task process leaves stop signals to its worker.

Each case runs tests/support/sandbox_probe.py in a session of its own, so that its SIGTERM to
the whole process group reaches the probe and its task process and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.workers import ROOT


def probe(when: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.sandbox_probe", when], cwd=ROOT,
        capture_output=True, text=True, timeout=90, start_new_session=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    outcome: dict = json.loads(done.stdout.splitlines()[-1])
    return outcome


@pytest.mark.parametrize("when", ["boot", "task"])
def test_a_sigterm_to_the_process_group_does_not_stop_the_task_process(when: str) -> None:
    # Given a task process starting up (boot) or running a task (task), when SIGTERM reaches
    # its whole process group, then the task completes in that same process
    assert probe(when) == {"result": {}, "child_alive": True}
