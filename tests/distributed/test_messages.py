"""Typed task messages and results: JSON round trips and what parsing refuses."""

from __future__ import annotations

import json

import pytest

from distributed.errors import InvalidMessage
from distributed.ids import new_job_id
from distributed.messages import TaskMessage, TaskResult, fingerprint

JOB = new_job_id()
STEPS = ({"filter": "blur", "params": {"radius": 2}},)


def image_message(**changes) -> TaskMessage:
    fields = {"job_id": JOB, "index": 3, "kind": "image", "image_id": "sample-badge",
              "steps": STEPS, "output_format": "png", "quality": 80, "request_id": "req-1"}
    return TaskMessage(**{**fields, **changes})


def test_a_task_message_survives_a_json_round_trip():
    for message in (image_message(), TaskMessage(job_id=JOB, index=0, kind="noop"),
                    TaskMessage(job_id=JOB, index=1, kind="sleep", seconds=0.5)):
        assert TaskMessage.from_json(message.to_json()) == message
    assert json.loads(image_message().to_json())["version"] == 1


def test_a_message_without_a_version_is_read_as_version_one():
    data = json.loads(image_message().to_json())
    del data["version"]
    assert TaskMessage.from_json(json.dumps(data)) == image_message()


@pytest.mark.parametrize("change, complaint", [
    ({"version": 2}, "version 2"),
    ({"version": True}, "version True"),
    ({"output_key": "outputs/job_other/0000-x.png"}, "unknown field(s): output_key"),
    ({"path": "/etc/passwd"}, "unknown field(s): path"),
    ({"kind": "shell"}, "unknown task kind"),
    ({"index": "3"}, "index has the wrong type"),
    ({"index": True}, "index must not be a boolean"),
    ({"index": -1}, "index must be >= 0"),
    ({"job_id": "job_x:tasks"}, "is not a job id"),
    ({"image_id": None}, "needs an image_id"),
    ({"steps": "blur"}, "steps has the wrong type"),
    ({"steps": ["blur"]}, "steps[] has the wrong type"),
    ({"quality": 101}, "quality must be between"),
    ({"request_id": "a b\nevent=fake"}, "request_id must be"),
])
def test_a_malformed_message_is_refused_with_a_clear_error(change, complaint):
    data = {**json.loads(image_message().to_json()), **change}
    with pytest.raises(InvalidMessage) as info:
        TaskMessage.from_json(json.dumps(data))
    assert complaint in str(info.value)


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"index": 0}'])
def test_text_that_is_no_message_object_is_refused(text):
    with pytest.raises(InvalidMessage):
        TaskMessage.from_json(text)


def test_a_payload_must_name_the_task_it_is_stored_under():
    message = image_message()
    assert TaskMessage.for_task(f"{JOB}.3", message.to_json()) == message
    with pytest.raises(InvalidMessage, match="names task"):
        TaskMessage.for_task(f"{JOB}.4", message.to_json())
    with pytest.raises(InvalidMessage, match="names task"):
        TaskMessage.for_task(f"{new_job_id()}.3", message.to_json())


def test_a_task_result_survives_a_json_round_trip_and_refuses_unknown_fields():
    result = TaskResult(duration_ms=12.5, worker="w1", attempt=2, output_key="outputs/a.png",
                        format="png", width=4, height=3, bytes=99,
                        timings=({"filter": "blur", "ms": 1.5},), total_ms=11.0)
    assert TaskResult.from_json(result.to_json()) == result
    assert result.to_dict()["timings"] == [{"filter": "blur", "ms": 1.5}]
    with pytest.raises(InvalidMessage, match="unknown field"):
        TaskResult.from_json(json.dumps({**result.to_dict(), "slept_s": 1}))
    with pytest.raises(InvalidMessage, match="version"):
        TaskResult.from_json(json.dumps({**result.to_dict(), "version": 7}))
    with pytest.raises(InvalidMessage, match="width has the wrong type"):
        TaskResult.from_json(json.dumps({**result.to_dict(), "width": "4"}))


def test_fingerprints_ignore_key_order_and_see_every_value():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1, "b": [1, 2]}) != fingerprint({"a": 1, "b": [2, 1]})
