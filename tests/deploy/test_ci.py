""".github/workflows/ci.yml: SchemaStore's workflow schema (vendored), then what CI must do."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from . import REPO_ROOT, load_schema, load_yaml

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    raw: dict[Any, Any] = load_yaml(WORKFLOW)
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean true; GitHub reads "on".
    return {("on" if key is True else key): value for key, value in raw.items()}


def workflow_errors(document: dict[str, Any]) -> list[str]:
    schema = load_schema("github-workflows.json")
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator_cls(schema).iter_errors(document)
    ]


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflow_matches_the_github_workflow_schema(workflow: dict[str, Any]) -> None:
    assert workflow_errors(workflow) == []


def test_workflow_schema_rejects_a_job_without_a_runner(workflow: dict[str, Any]) -> None:
    broken = copy.deepcopy(workflow)
    del broken["jobs"]["test"]["runs-on"]
    assert workflow_errors(broken)


def test_workflow_runs_on_push_and_pull_request(workflow: dict[str, Any]) -> None:
    assert {"push", "pull_request"} <= set(workflow["on"])


def test_test_job_runs_make_test_on_python_311(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    setup = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python@")]
    assert setup and str(setup[0]["with"]["python-version"]) == "3.11"
    assert any(s.get("run", "").strip() == "make test" for s in job["steps"])


def test_image_job_builds_the_dockerfile_without_pushing(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["image"]
    builds = [
        s for s in job["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action@")
    ]
    assert len(builds) == 1
    options = builds[0]["with"]
    assert options["file"] == "docker/Dockerfile"
    assert options["context"] == "."
    assert options["push"] is False


def test_every_action_is_pinned_to_a_version(workflow: dict[str, Any]) -> None:
    for step in steps(workflow):
        if "uses" in step:
            action, _, ref = step["uses"].partition("@")
            assert ref, f"{action} has no version"
