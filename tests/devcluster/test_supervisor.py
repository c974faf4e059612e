"""devcluster/supervisor.py: the supervisord config of `make run`, read back by supervisord's
own parser. Nothing here starts a process; tests/integration/test_local_cluster.py does."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from supervisor.options import ServerOptions

from common.settings import ClusterSettings
from devcluster.supervisor import ClusterPlan, redact_url, supervisor_environment


def programs(plan: ClusterPlan) -> dict[str, Any]:
    """program name -> its ProcessConfig, as supervisord's own parser reads the config."""
    for sub in ("log", "run"):
        (plan.var_dir / sub).mkdir(parents=True, exist_ok=True)
    plan.conf_path.write_text(plan.supervisor_conf())
    options = ServerOptions()
    options.configfile = str(plan.conf_path)
    options.process_config(do_usage=False)
    return {
        process.name: process
        for group in options.process_group_configs
        for process in group.process_configs
    }


def parsed(plan: ClusterPlan) -> dict[str, tuple[dict[str, str], str]]:
    """program name -> (environment, command) as supervisord understands the config."""
    return {name: (process.environment or {}, process.command)
            for name, process in programs(plan).items()}


def build(tmp_path: Path, *, redis_url: str = "", **env: str) -> ClusterPlan:
    return ClusterPlan.build(
        ClusterSettings.from_env(env, workers=2), redis_url=redis_url, base_dir=tmp_path,
        var_dir=tmp_path / "var", media_root=tmp_path / "media 100%",
    )


def test_every_child_gets_redis_media_and_var_dir_explicitly(tmp_path: Path) -> None:
    plan = build(tmp_path)
    programs = parsed(plan)
    assert set(programs) == {"redis", "api", "worker-1", "worker-2"}
    shared = {"REDIS_URL": plan.redis_url, "MEDIA_ROOT": str(tmp_path / "media 100%"),
              "VAR_DIR": str(tmp_path / "var")}
    # The API's gunicorn processes add up their HTTP metrics in a directory of the cluster
    assert programs["api"][0] == {
        **shared, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "var" / "run" / "metrics")}
    assert programs["worker-2"][0] == {**shared, "WORKER_ID": "worker-2"}
    password = plan.embedded_redis_password
    assert len(password) >= 32
    assert plan.redis_url == f"redis://:{password}@127.0.0.1:{plan.embedded_redis_port}/0"


def test_the_embedded_redis_has_a_password_of_its_own_kept_out_of_sight(tmp_path: Path) -> None:
    first, second = build(tmp_path), build(tmp_path)
    assert first.embedded_redis_password != second.embedded_redis_password
    command = parsed(first)["redis"][1]
    assert first.embedded_redis_password not in command  # `ps` shows command lines
    assert str(first.redis_conf_path) in command and "--bind 127.0.0.1" in command
    assert first.redis_conf() == f"requirepass {first.embedded_redis_password}\n"
    assert first.embedded_redis_password not in first.banner()
    assert "Auth         OFF" in first.banner()


def test_a_stop_signals_the_worker_alone_and_a_kill_takes_its_whole_group(
    tmp_path: Path,
) -> None:
    # The worker finishes its task in hand, then stops its task process itself; only the
    # SIGKILL after stopwaitsecs (grace + 5 s) goes to the task process too.
    for name in ("worker-1", "worker-2"):
        worker = programs(build(tmp_path))[name]
        assert (worker.stopsignal, worker.stopasgroup, worker.killasgroup) == (
            signal.SIGTERM, False, True)
        assert worker.stopwaitsecs == 30
    # gunicorn's master and its workers, and Redis, still stop as a group.
    api, redis = programs(build(tmp_path))["api"], programs(build(tmp_path))["redis"]
    assert (api.stopasgroup, api.killasgroup) == (True, True)
    assert (redis.stopasgroup, redis.killasgroup) == (True, True)


def test_the_embedded_redis_writes_its_data_files_for_its_user_only(tmp_path: Path) -> None:
    plan = build(tmp_path)
    processes = programs(plan)
    assert processes["redis"].umask == 0o077
    assert f"--dir {plan.var_dir / 'redis'} " in processes["redis"].command
    assert {name: processes[name].umask for name in ("api", "worker-1")} == {
        "api": None, "worker-1": None}  # media stay as they were


def test_urls_lose_their_password_in_the_banner() -> None:
    assert redact_url("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redact_url("redis://app:s3cret@redis:6379/0") == "redis://app:***@redis:6379/0"
    assert redact_url("redis://redis:6379/0") == "redis://redis:6379/0"


def test_the_api_runs_gunicorn_with_the_shared_log_format_and_the_cluster_settings(
    tmp_path: Path,
) -> None:
    plan = build(tmp_path, GUNICORN_WORKERS="3", GUNICORN_THREADS="5", PORT="8123")
    command = parsed(plan)["api"][1]
    assert "gunicorn project.asgi:application -c python:project.gunicorn_conf" in command
    assert "--bind 127.0.0.1:8123 --workers 3 --threads 5" in command


def test_a_given_redis_url_starts_no_embedded_redis(tmp_path: Path) -> None:
    plan = build(tmp_path, redis_url="redis://10.0.0.5:6379/2", EMBEDDED_REDIS_PORT="6999")
    programs = parsed(plan)
    assert "redis" not in programs
    assert programs["worker-1"][0]["REDIS_URL"] == "redis://10.0.0.5:6379/2"


def test_the_embedded_redis_port_and_the_grace_period_come_from_the_settings(
    tmp_path: Path,
) -> None:
    plan = build(tmp_path, EMBEDDED_REDIS_PORT="6999", SHUTDOWN_GRACE_SECONDS="7")
    assert plan.redis_url.endswith("@127.0.0.1:6999/0")
    assert "stopwaitsecs=12" in plan.supervisor_conf()  # the grace period + 5 s


def test_an_environment_value_supervisord_cannot_hold_is_refused() -> None:
    with pytest.raises(ValueError, match="MEDIA_ROOT"):
        supervisor_environment({"MEDIA_ROOT": 'a"b'})
