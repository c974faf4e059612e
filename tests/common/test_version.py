"""One version string (common.__version__): the health report, the OpenAPI schema, the worker
registry and the packaging metadata all say the same."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import project
from common import __version__
from distributed.status import cluster_status

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_declares_the_service_version() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["version"] == __version__


@pytest.mark.django_db
def test_health_and_the_openapi_schema_report_the_service_version(client, media_root) -> None:
    assert project.__version__ == __version__
    assert client.get("/api/health/").json()["version"] == __version__
    schema = client.get("/api/schema/", {"format": "json"}).json()
    assert schema["info"]["version"] == __version__


@pytest.mark.slow
def test_a_worker_registers_with_the_service_version(
    redis_client, queue_config, start_worker
) -> None:
    start_worker("w1")
    [worker] = cluster_status(redis_client, queue_config)["workers"]
    assert worker["version"] == __version__
