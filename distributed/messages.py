"""Typed messages of the queue: what a task asks for and what a worker answers, as JSON.

Both are frozen dataclasses with ``to_json()`` / ``from_json()``. Parsing checks every type and
refuses an unknown ``version`` or an unknown field with :class:`InvalidMessage`; a message
without ``version`` is version 1 (written before messages were versioned). A task never names
a storage path: the worker derives it from the job id, index, image id and format.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from distributed.errors import InvalidMessage
from distributed.ids import index_of, is_job_id, job_id_of

VERSION = 1
KINDS = ("image", "noop", "sleep")
EFFORTS = ("fast", "balanced", "small")
JsonText = str | bytes
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def is_request_id(value: object) -> bool:
    """True for an id safe to carry into log lines (no spaces, quotes or newlines)."""
    return isinstance(value, str) and _REQUEST_ID.fullmatch(value) is not None


def _check(name: str, value: Any, types: type | tuple[type, ...], optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise InvalidMessage(f"{name} must not be a boolean")
    if not isinstance(value, types):
        raise InvalidMessage(f"{name} has the wrong type ({type(value).__name__})")


def _object(text: JsonText, allowed: set[str], what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidMessage(f"{what} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidMessage(f"{what} must be a JSON object")
    version = data.pop("version", VERSION)
    if version != VERSION or isinstance(version, bool):
        raise InvalidMessage(f"{what} has version {version!r}; this worker reads {VERSION}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidMessage(f"{what} has unknown field(s): {', '.join(unknown)}")
    return data


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps({"version": VERSION, **data}, separators=(",", ":"))


@dataclass(frozen=True)
class TaskMessage:
    """One task: ``image`` (run ``steps`` on ``image_id``), ``noop`` or ``sleep`` (benchmarks
    and fault tests). ``request_id`` is the HTTP request that submitted it, for the logs."""

    job_id: str
    index: int
    kind: str = "image"
    image_id: str | None = None
    steps: tuple[dict[str, Any], ...] = ()
    output_format: str | None = None
    quality: int = 90
    seconds: float = 0.0
    request_id: str | None = None
    effort: str = "balanced"  # encoder speed/size trade-off: fast, balanced, small
    keep_metadata: bool = False  # copy the input's EXIF into the output
    tenant: str = "anonymous"  # who submitted it (the fair share and the caps count per tenant)

    def __post_init__(self) -> None:
        _check("job_id", self.job_id, str)
        if not is_job_id(self.job_id):
            raise InvalidMessage(f"job_id {self.job_id!r} is not a job id")
        _check("index", self.index, int)
        if self.index < 0:
            raise InvalidMessage("index must be >= 0")
        if self.kind not in KINDS:
            raise InvalidMessage(f"unknown task kind {self.kind!r}")
        _check("image_id", self.image_id, str, optional=True)
        if self.kind == "image" and not self.image_id:
            raise InvalidMessage("an image task needs an image_id")
        _check("steps", self.steps, tuple)
        for step in self.steps:
            _check("steps[]", step, dict)
        _check("output_format", self.output_format, str, optional=True)
        _check("quality", self.quality, int)
        if not 1 <= self.quality <= 100:
            raise InvalidMessage("quality must be between 1 and 100")
        _check("seconds", self.seconds, (int, float))
        if not 0 <= self.seconds <= 3600:
            raise InvalidMessage("seconds must be between 0 and 3600")
        if self.request_id is not None and not is_request_id(self.request_id):
            raise InvalidMessage("request_id must be 1-128 of [A-Za-z0-9._:-]")
        if self.effort not in EFFORTS:
            raise InvalidMessage(f"effort must be one of {', '.join(EFFORTS)}")
        if not isinstance(self.keep_metadata, bool):
            raise InvalidMessage("keep_metadata must be a boolean")
        _check("tenant", self.tenant, str)
        if not self.tenant:
            raise InvalidMessage("tenant must not be empty")

    @property
    def task_id(self) -> str:
        return f"{self.job_id}.{self.index}"

    def to_json(self) -> str:
        data: dict[str, Any] = {"kind": self.kind, "job_id": self.job_id, "index": self.index}
        if self.kind == "image":
            data.update(image_id=self.image_id, steps=list(self.steps),
                        output_format=self.output_format, quality=self.quality)
            if self.effort != "balanced":
                data["effort"] = self.effort
            if self.keep_metadata:
                data["keep_metadata"] = True
        elif self.kind == "sleep":
            data["seconds"] = self.seconds
        if self.request_id is not None:
            data["request_id"] = self.request_id
        if self.tenant != "anonymous":
            data["tenant"] = self.tenant
        return _dump(data)

    @classmethod
    def from_json(cls, text: JsonText) -> TaskMessage:
        data = _object(text, set(_MESSAGE_FIELDS), "task message")
        if isinstance(data.get("steps"), list):
            data["steps"] = tuple(data["steps"])
        try:
            return cls(**data)
        except TypeError as exc:  # a required field is missing
            raise InvalidMessage(f"task message: {exc}") from None

    @classmethod
    def for_task(cls, task_id: str, text: JsonText) -> TaskMessage:
        """Parse the payload of task ``task_id``; it must name that task's job and index, so a
        payload copied from another task cannot write into another job's outputs."""
        message = cls.from_json(text)
        if (message.job_id, message.index) != (job_id_of(task_id), index_of(task_id)):
            raise InvalidMessage(f"the payload of task {task_id} names task {message.task_id}")
        return message


@dataclass(frozen=True)
class TaskResult:
    """What a completed task produced. The image fields stay None for noop/sleep tasks."""

    duration_ms: float
    worker: str
    attempt: int
    output_key: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    timings: tuple[dict[str, Any], ...] = ()
    total_ms: float | None = None

    def __post_init__(self) -> None:
        _check("duration_ms", self.duration_ms, (int, float))
        _check("worker", self.worker, str)
        _check("attempt", self.attempt, int)
        for name in ("output_key", "format"):
            _check(name, getattr(self, name), str, optional=True)
        for name in ("width", "height", "bytes"):
            _check(name, getattr(self, name), int, optional=True)
        _check("total_ms", self.total_ms, (int, float), optional=True)
        _check("timings", self.timings, tuple)
        for timing in self.timings:
            _check("timings[]", timing, dict)

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _RESULT_FIELDS}
        data["timings"] = [dict(t) for t in self.timings]
        return data

    def to_json(self) -> str:
        return _dump(self.to_dict())

    @classmethod
    def from_json(cls, text: JsonText) -> TaskResult:
        data = _object(text, set(_RESULT_FIELDS), "task result")
        if isinstance(data.get("timings"), list):
            data["timings"] = tuple(data["timings"])
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidMessage(f"task result: {exc}") from None


_MESSAGE_FIELDS = tuple(f.name for f in fields(TaskMessage))
_RESULT_FIELDS = tuple(f.name for f in fields(TaskResult))


def fingerprint(request: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``request`` (sorted keys, no spaces): what makes two
    submissions under one Idempotency-Key "the same request"."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
