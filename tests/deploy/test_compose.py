"""docker-compose.yml: the Compose Specification schema, then what the services must agree on.

The schema is vendored (tests/deploy/schemas/compose-spec.json, from the check-jsonschema
0.39.0 wheel; see schemas/README.md), so this runs offline and needs no Docker.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import pytest

from . import (
    CONTRACT_ENV,
    QUEUE_PROTOCOL_ENV,
    REPO_ROOT,
    code_env_names,
    load_schema,
    load_yaml,
)

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENTRYPOINT = REPO_ROOT / "docker" / "entrypoint.sh"
WORKERS = ("worker-1", "worker-2", "worker-3")
APP_SERVICES = ("api", *WORKERS)
MEDIA_VOLUME = "media"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


def compose_errors(document: dict[str, Any]) -> list[str]:
    schema = load_schema("compose-spec.json")
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "write environment as a mapping"
    return {key: str(value) for key, value in environment.items()}


def seconds(duration: str) -> float:
    """A Compose duration such as 30s, 1m30s or 1m."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?", duration)
    assert parts and duration, f"unsupported duration {duration!r}"
    hours, minutes, secs = (int(p) if p else 0 for p in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def named_volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """volume name -> mount path, for the short `name:/path[:mode]` syntax."""
    mounts = {}
    for entry in service.get("volumes", []):
        assert isinstance(entry, str), "use the short volume syntax"
        source, target = entry.split(":")[:2]
        mounts[source] = target
    return mounts


# --- schema --------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_errors(compose) == []


def test_compose_schema_rejects_misspelt_and_mistyped_keys(compose: dict[str, Any]) -> None:
    # Proves the vendored schema is strict enough to catch the usual slips.
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["restart_policy"] = "always"  # not a service key
    broken["services"]["worker-1"]["depends_on"] = {"redis": {"condition": "healthy"}}
    broken["services"]["worker-2"]["stop_grace_period"] = 30  # must be a duration string
    errors = compose_errors(broken)
    assert any(e.startswith("services/api") for e in errors), errors
    assert any(e.startswith("services/worker-1/depends_on") for e in errors), errors
    assert any(e.startswith("services/worker-2/stop_grace_period") for e in errors), errors


def test_compose_defines_redis_api_and_three_workers(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"redis", *APP_SERVICES}


# --- redis ---------------------------------------------------------------------------


def test_redis_keeps_an_append_only_file_on_a_named_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    mounts = named_volume_mounts(redis)
    assert mounts.get("redis-data") == "/data"
    assert "redis-data" in compose["volumes"]


def test_redis_health_is_a_ping(compose: dict[str, Any]) -> None:
    assert compose["services"]["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


# --- api and workers -----------------------------------------------------------------


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_share_one_image_built_from_the_dockerfile(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert service["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"}
    assert service["image"] == compose["services"]["api"]["image"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_a_healthy_redis(compose: dict[str, Any], name: str) -> None:
    depends_on = compose["services"][name]["depends_on"]
    assert depends_on["redis"]["condition"] == "service_healthy"


def test_api_publishes_port_8000_on_loopback_unless_told_otherwise(
    compose: dict[str, Any],
) -> None:
    (port,) = compose["services"]["api"]["ports"]
    assert interpolated(port) == "127.0.0.1:8000:8000"


def test_images_can_be_swapped_for_local_ones(compose: dict[str, Any]) -> None:
    # The offline build (docs/containers.md) names its own images; nothing else changes.
    assert compose["services"]["redis"]["image"] == "${REDIS_IMAGE:-redis:7-alpine}"
    assert compose["services"]["api"]["image"] == "${IMAGE:-imgproc:local}"


def test_compose_file_has_no_top_level_name_for_docker_compose_1_29(
    compose: dict[str, Any],
) -> None:
    # docker-compose 1.29 (Debian's) rejects it; `-p NAME` names a project instead.
    assert "name" not in compose


def test_api_runs_gunicorn_on_project_wsgi(compose: dict[str, Any]) -> None:
    command = compose["services"]["api"]["command"]
    if command == ["api"]:
        # The entrypoint's api role; test_docker.py runs it and checks the exact command line.
        script = ENTRYPOINT.read_text(encoding="utf-8")
        api_branch = script.split("api)", 1)[1].split(";;", 1)[0]
        assert "migrate --noinput" in api_branch
        assert "exec gunicorn project.wsgi:application" in api_branch
        assert "--bind 0.0.0.0:8000" in api_branch
    else:
        assert "gunicorn project.wsgi:application" in " ".join(command)


def test_api_health_check_asks_the_health_endpoint(compose: dict[str, Any]) -> None:
    test = compose["services"]["api"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert "http://127.0.0.1:8000/api/health/" in " ".join(test)


def test_api_answers_the_host_names_it_is_reached_by(compose: dict[str, Any]) -> None:
    allowed = env(compose["services"]["api"])["DJANGO_ALLOWED_HOSTS"].split(",")
    # 127.0.0.1: its own health check; localhost: the published port; api: other containers.
    assert {"127.0.0.1", "localhost", "api"} <= set(allowed)


@pytest.mark.parametrize("name", WORKERS)
def test_workers_run_python_m_workers(compose: dict[str, Any], name: str) -> None:
    assert compose["services"][name]["command"] == ["python", "-m", "workers"]


def test_workers_have_distinct_ids_named_after_their_service(compose: dict[str, Any]) -> None:
    ids = [env(compose["services"][name]).get("WORKER_ID") for name in WORKERS]
    assert ids == list(WORKERS)


@pytest.mark.parametrize("name", WORKERS)
def test_workers_are_health_checked_by_their_own_heartbeat(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "workers", "healthcheck"]
    assert env(service)["WORKER_HEALTH_FILE"] == "/tmp/worker.health"


@pytest.mark.parametrize("name", WORKERS)
def test_workers_get_longer_to_stop_than_their_shutdown_grace(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    grace = float(env(service).get("SHUTDOWN_GRACE_SECONDS", "25"))
    assert seconds(service["stop_grace_period"]) > grace
    # `stop worker-2` must keep it stopped; a crash must bring it back.
    assert service["restart"] == "unless-stopped"


def test_media_volume_is_shared_at_media_root_by_api_and_workers(compose: dict[str, Any]) -> None:
    assert MEDIA_VOLUME in compose["volumes"]
    for name in APP_SERVICES:
        service = compose["services"][name]
        media_root = env(service)["MEDIA_ROOT"]
        assert named_volume_mounts(service).get(MEDIA_VOLUME) == media_root, name
    assert len({env(compose["services"][n])["MEDIA_ROOT"] for n in APP_SERVICES}) == 1


def test_api_keeps_its_database_on_a_volume(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    var_dir = env(api)["VAR_DIR"]
    assert var_dir in named_volume_mounts(api).values()


def test_queue_protocol_settings_agree_between_api_and_workers(compose: dict[str, Any]) -> None:
    for name in QUEUE_PROTOCOL_ENV:
        values = {service: env(compose["services"][service]).get(name) for service in APP_SERVICES}
        assert len(set(values.values())) == 1, f"{name} differs: {values}"
        assert None not in values.values(), f"{name} unset somewhere: {values}"


def test_redis_url_points_at_the_redis_service_with_its_password(
    compose: dict[str, Any],
) -> None:
    for name in APP_SERVICES:
        url = env(compose["services"][name])["REDIS_URL"]
        assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]+\}@redis:6379/\d+", url), url


def test_redis_wants_a_password_that_no_file_of_the_repository_holds(
    compose: dict[str, Any],
) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    password = command[command.index("--requirepass") + 1]
    assert re.fullmatch(r"\$\{REDIS_PASSWORD:\?[^}]+\}", password)
    assert redis["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?")


def test_the_api_requires_keys_and_a_secret_key_of_its_own(compose: dict[str, Any]) -> None:
    api = env(compose["services"]["api"])
    assert api["AUTH_REQUIRED"] == "true"
    assert api["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")  # no default to fall to


# --- the environment contract --------------------------------------------------------


def test_every_variable_set_in_compose_is_read_by_the_code(compose: dict[str, Any]) -> None:
    set_names: set[str] = set()
    for name, service in compose["services"].items():
        if name != "redis":  # redis-cli's REDISCLI_AUTH, not ours
            set_names.update(env(service))
    unread = set_names - code_env_names()
    assert not unread, (
        f"compose sets variables no code reads (typo, or code missing): {sorted(unread)}"
    )


def test_every_contract_variable_is_read_by_the_code() -> None:
    missing = CONTRACT_ENV - code_env_names()
    assert not missing, f"the code does not read: {sorted(missing)}"


def test_every_contract_variable_is_documented_in_the_compose_file() -> None:
    header = "\n".join(
        line
        for line in COMPOSE_FILE.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    )
    undocumented = {name for name in CONTRACT_ENV if not re.search(rf"\b{name}\b", header)}
    assert not undocumented, sorted(undocumented)


def interpolated(value: str) -> str:
    """Compose's `${NAME:-default}` with NAME unset: the default; `${NAME:?error}` (a value
    the user must set, a password): NAME in lower case."""
    value = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{([A-Z0-9_]+):\?[^}]*\}", lambda m: m.group(1).lower(), value)


@pytest.mark.parametrize("name", WORKERS)
def test_worker_environment_parses_into_the_workers_settings(
    compose: dict[str, Any], name: str
) -> None:
    from workers.settings import WorkerSettings

    service = compose["services"][name]
    settings = WorkerSettings.from_env({k: interpolated(v) for k, v in env(service).items()})
    assert settings.worker_id == name
    assert settings.media_root == "/data/media"
    assert settings.health_file == "/tmp/worker.health"
    assert settings.queue.redis_url == "redis://:redis_password@redis:6379/0"
    assert settings.shutdown_grace_s < seconds(service["stop_grace_period"])
