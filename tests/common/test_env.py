"""common/env.py and common/settings.py: typed settings from the environment, parsed once."""

from __future__ import annotations

import ast
import dataclasses
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from common.env import DeprecatedSettingWarning, SettingsError, Var, load, setting
from common.settings import (
    INSECURE_SECRET_KEY,
    ApiSettings,
    ClusterSettings,
    LogSettings,
    WorkerSettings,
    queue_config_from_env,
)
from distributed.config import QueueConfig

RENAMED = {
    "HEARTBEAT_INTERVAL": "HEARTBEAT_INTERVAL_SECONDS",
    "RETRY_BACKOFF_BASE": "RETRY_BACKOFF_BASE_SECONDS",
    "RETRY_BACKOFF_MAX": "RETRY_BACKOFF_MAX_SECONDS",
    "DEAD_WORKER_RETENTION": "DEAD_WORKER_RETENTION_SECONDS",
}

SHARED = Var("SHARED_SECONDS", "read by two fields", aliases=("SHARED",))


@dataclass(frozen=True)
class TwoReaders:
    first: float = setting(SHARED, 1.0)
    second: float = setting(SHARED, 1.0)


def test_every_variable_is_parsed_by_the_type_of_its_field() -> None:
    settings = ApiSettings.from_env({
        "DJANGO_DEBUG": "yes",
        "DJANGO_ALLOWED_HOSTS": " api , localhost,,",
        "VAR_DIR": "/srv/var",
        "MAX_UPLOAD_BYTES": "1000",
        "TASK_LEASE_SECONDS": "4.5",
        "MAX_RETRIES": "5",
        "LOG_FORMAT": "LOGFMT",
        "LOG_LEVEL": "debug",
    })
    assert settings.debug is True
    assert settings.allowed_hosts == ("api", "localhost")
    assert settings.var_dir == Path("/srv/var")
    assert settings.max_upload_bytes == 1000
    assert settings.queue.lease_s == 4.5
    assert settings.queue.max_retries == 5
    assert (settings.log_format, settings.log_level) == ("logfmt", "DEBUG")


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = ApiSettings.from_env({})
    assert settings.queue == QueueConfig()
    assert settings.debug is False
    assert settings.log_format == "json"
    assert settings.media_root == settings.var_dir / "media"
    assert settings.uses_builtin_secret_key and settings.secret_key == INSECURE_SECRET_KEY


def test_an_empty_value_counts_as_unset() -> None:
    settings = WorkerSettings.from_env({"TASK_LEASE_SECONDS": "", "WORKER_CONCURRENCY": "  "})
    assert settings.queue.lease_s == QueueConfig().lease_s
    assert settings.concurrency == 1


def test_media_root_defaults_to_media_under_var_dir_for_the_api_and_the_workers() -> None:
    env = {"VAR_DIR": "/srv/state"}
    assert ApiSettings.from_env(env).media_root == Path("/srv/state/media")
    assert WorkerSettings.from_env(env).media_root == "/srv/state/media"
    env["MEDIA_ROOT"] = "/data/media"
    assert ApiSettings.from_env(env).media_root == Path("/data/media")
    assert WorkerSettings.from_env(env).media_root == "/data/media"


def test_an_own_secret_key_is_used_and_told_apart_from_the_builtin_one() -> None:
    settings = ApiSettings.from_env({"DJANGO_SECRET_KEY": "s3cr3t"})
    assert settings.secret_key == "s3cr3t"
    assert not settings.uses_builtin_secret_key


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TASK_LEASE_SECONDS", "abc", "TASK_LEASE_SECONDS='abc': expected a number"),
        ("MAX_RETRIES", "3.5", "MAX_RETRIES='3.5': expected a whole number"),
        ("DJANGO_DEBUG", "ture", "DJANGO_DEBUG='ture': expected true or false"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT='xml': expected one of json, logfmt"),
        ("HEARTBEAT_INTERVAL_SECONDS", "inf", "expected a finite number"),
        ("THREAD_POOL_SIZE", "0", "THREAD_POOL_SIZE=0: must be at least 1"),
        ("THROTTLE_RATE", "fast", "THROTTLE_RATE='fast': expected <count>/<period>"),
        ("THROTTLE_BURST", "-1", "THROTTLE_BURST=-1: must be at least 0"),
    ],
)
def test_a_value_that_does_not_parse_is_refused_naming_the_variable(
    name: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError, match=expected.replace("(", r"\(")):
        ApiSettings.from_env({name: value})


def test_the_rate_limit_is_a_nested_group_whose_burst_defaults_to_a_tenth_per_minute() -> None:
    def throttle(**env: str) -> tuple[str, int]:
        settings = ApiSettings.from_env(env).throttle
        return settings.rate, settings.burst

    assert throttle() == ("1200/min", 120)
    assert throttle(THROTTLE_RATE="10/s") == ("10/s", 60)
    assert throttle(THROTTLE_RATE="10/s", THROTTLE_BURST="0") == ("10/s", 0)
    assert throttle(THROTTLE_RATE="Off") == ("", 0)  # empty would be unset: the default
    # A malformed rate stops the process even when the burst is given
    with pytest.raises(SettingsError, match="THROTTLE_RATE='9/week'"):
        throttle(THROTTLE_RATE="9/week", THROTTLE_BURST="3")


def test_worker_concurrency_below_one_is_refused_from_the_environment_and_the_command_line(
) -> None:
    with pytest.raises(SettingsError, match="WORKER_CONCURRENCY=0: must be at least 1"):
        WorkerSettings.from_env({"WORKER_CONCURRENCY": "0"})
    with pytest.raises(SettingsError, match="WORKER_PREFETCH=0: must be at least 1"):
        WorkerSettings.from_env({}, prefetch=0)


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_an_old_name_still_works_and_warns_naming_the_new_one(old: str, new: str) -> None:
    with pytest.warns(DeprecatedSettingWarning, match=f"^{old} is deprecated: set {new} instead$"):
        settings = WorkerSettings.from_env({old: "7"})
    field = {
        "HEARTBEAT_INTERVAL": "heartbeat_interval_s",
        "RETRY_BACKOFF_BASE": "retry_backoff_base_s",
        "RETRY_BACKOFF_MAX": "retry_backoff_max_s",
        "DEAD_WORKER_RETENTION": "dead_worker_retention_s",
    }[old]
    assert getattr(settings.queue, field) == 7


def test_an_old_name_that_does_not_parse_is_refused_naming_both_names() -> None:
    with pytest.warns(DeprecatedSettingWarning), pytest.raises(
        SettingsError,
        match=r"HEARTBEAT_INTERVAL \(old name of HEARTBEAT_INTERVAL_SECONDS\)='x'",
    ):
        WorkerSettings.from_env({"HEARTBEAT_INTERVAL": "x"})


def test_an_old_name_warns_once_even_when_read_twice() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load(TwoReaders, {"SHARED": "2"})
    assert (settings.first, settings.second) == (2.0, 2.0)
    assert [str(w.message) for w in caught] == ["SHARED is deprecated: set SHARED_SECONDS instead"]


def test_the_new_name_wins_over_the_old_one_without_a_warning() -> None:
    # filterwarnings = error: any warning here fails the test.
    settings = WorkerSettings.from_env(
        {"HEARTBEAT_INTERVAL_SECONDS": "1.5", "HEARTBEAT_INTERVAL": "9"}
    )
    assert settings.queue.heartbeat_interval_s == 1.5


def test_command_line_overrides_win_and_none_means_not_given() -> None:
    env = {"WORKER_ID": "from-env", "WORKER_CONCURRENCY": "3", "LOG_LEVEL": "WARNING"}
    settings = WorkerSettings.from_env(env, worker_id="from-flag", concurrency=None,
                                       log_level="DEBUG")
    assert (settings.worker_id, settings.concurrency, settings.log_level) == (
        "from-flag", 3, "DEBUG"
    )


def test_an_override_for_a_field_that_does_not_exist_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="no field colour"):
        LogSettings.from_env({}, colour="blue")


def test_settings_objects_are_immutable() -> None:
    settings = WorkerSettings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.concurrency = 4  # type: ignore[misc]


def test_the_queue_settings_are_the_same_for_the_api_the_workers_and_the_tools() -> None:
    env = {"REDIS_URL": "redis://r:6379/1", "REDIS_PREFIX": "p", "TASK_LEASE_SECONDS": "9",
           "HEARTBEAT_INTERVAL_SECONDS": "1", "MAX_QUEUED_TASKS": "12"}
    queue = queue_config_from_env(env)
    assert queue == ApiSettings.from_env(env).queue == WorkerSettings.from_env(env).queue
    assert (queue.redis_url, queue.prefix, queue.lease_s, queue.heartbeat_interval_s,
            queue.max_queued_tasks) == ("redis://r:6379/1", "p", 9.0, 1.0, 12)


def test_the_local_cluster_settings_come_from_the_environment_and_its_flags() -> None:
    cluster = ClusterSettings.from_env(
        {"GUNICORN_WORKERS": "3", "GUNICORN_THREADS": "2", "EMBEDDED_REDIS_PORT": "6390",
         "SHUTDOWN_GRACE_SECONDS": "5", "PORT": "9000"},
        port=9100,
    )
    assert (cluster.gunicorn_workers, cluster.gunicorn_threads, cluster.embedded_redis_port,
            cluster.shutdown_grace_s, cluster.port, cluster.host) == (
        3, 2, 6390, 5.0, 9100, "127.0.0.1"
    )


@dataclass(frozen=True)
class Choices:
    mode: Literal["fast", "safe"] = setting(Var("MODE", "how"), "safe")


def test_a_choice_is_matched_case_insensitively_and_kept_as_declared() -> None:
    assert load(Choices, {"MODE": "FAST"}).mode == "fast"


ROOT = Path(__file__).resolve().parents[2]
CODE_DIRS = ("project", "common", "distributed", "workers", "imaging", "devcluster", "image_api")
# Django's entry points name their settings module before any setting exists.
SETTINGS_MODULE_DEFAULTS = ("manage.py", "project/wsgi.py", "project/asgi.py")


def test_only_the_settings_loader_reads_the_environment() -> None:
    readers = set()
    for path in [ROOT / "manage.py", *(p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py"))]:
        relative = str(path.relative_to(ROOT))
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(r"os\.environ|os\.getenv|getenv\(", line) and not (
                relative in SETTINGS_MODULE_DEFAULTS and "DJANGO_SETTINGS_MODULE" in line
            ):
                readers.add(relative)
    assert readers == {"common/env.py"}


def test_common_imports_nothing_of_the_project_but_distributed() -> None:
    imported = set()
    for path in (ROOT / "common").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
    assert not imported & {"project", "image_api", "workers", "imaging", "devcluster"}
