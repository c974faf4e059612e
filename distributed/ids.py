"""Shapes of job and task ids, checked before an id reaches a Redis key.

A job id is ``job_<32 hex>``; a task id is ``<job id>.<index>``. An id of any other shape
names nothing: it could otherwise reach a key of another type (``job_x:tasks`` is the LIST
of job ``job_x``), so readers treat it as unknown without asking Redis.
"""

from __future__ import annotations

import re
import uuid

_JOB_ID = re.compile(r"job_[0-9a-f]{32}")
_TASK_ID = re.compile(r"(job_[0-9a-f]{32})\.(0|[1-9][0-9]{0,8})")


def new_job_id() -> str:
    """A fresh job id (used by every mode, local ones included)."""
    return f"job_{uuid.uuid4().hex}"


def is_job_id(value: object) -> bool:
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


def is_task_id(value: object) -> bool:
    return isinstance(value, str) and _TASK_ID.fullmatch(value) is not None


def task_id_for(job_id: str, index: int) -> str:
    return f"{job_id}.{index}"


def job_id_of(task_id: str) -> str:
    """Task ids are ``<job_id>.<index>``, so the job of a task needs no lookup."""
    return task_id.rsplit(".", 1)[0]


def index_of(task_id: str) -> int:
    return int(task_id.rsplit(".", 1)[1])
