"""The local cluster behind ``make run``: supervisord runs Redis (embedded unless REDIS_URL is
set), the API under gunicorn and N workers, so single workers can be stopped and started like
containers (``make worker-stop ID=worker-2``)."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.files import private_dir, write_private
from common.settings import ClusterSettings
from devcluster.control import WORKER_PREFIX
from distributed.embedded import free_port, redis_server_binary

SOCKET_PATH_MAX = 100
GUNICORN_CONF = "python:project.gunicorn_conf"


def supervisor_environment(env: Mapping[str, str]) -> str:
    """``environment=`` value of a supervisord program: KEY="value",... (``%`` escaped, since
    supervisord expands ``%(name)s``; a ``"`` or a newline cannot be written)."""
    pairs = []
    for name, value in env.items():
        if '"' in value or "\n" in value:
            raise ValueError(f"{name}: a supervisord environment value cannot hold {value!r}")
        pairs.append(f'{name}="{value.replace("%", "%%")}"')
    return ",".join(pairs)


@dataclass(frozen=True)
class ClusterPlan:
    """What ``make run`` starts, decided once: every value comes in from the settings objects
    (nothing here reads the environment), and each child gets its environment explicitly."""

    base_dir: Path
    var_dir: Path
    media_root: Path
    host: str
    port: int
    workers: int
    redis_url: str
    embedded_redis_port: int | None
    grace_s: float
    gunicorn_workers: int = 2
    gunicorn_threads: int = 4
    python: str = sys.executable
    auth_required: bool = False
    # The embedded Redis's password: random per run, in files only this user can read.
    embedded_redis_password: str = ""

    @classmethod
    def build(
        cls, cluster: ClusterSettings, *, redis_url: str, base_dir: Path, var_dir: Path,
        media_root: Path, auth_required: bool = False,
    ) -> ClusterPlan:
        """``redis_url`` empty: an embedded Redis on EMBEDDED_REDIS_PORT (or a free port),
        bound to loopback, with a password generated for this run."""
        var_dir = Path(var_dir).resolve()
        embedded = None
        password = ""
        if not redis_url:
            embedded = cluster.embedded_redis_port or free_port()
            password = secrets.token_urlsafe(24)
            redis_url = f"redis://:{password}@127.0.0.1:{embedded}/0"
        return cls(
            base_dir=Path(base_dir), var_dir=var_dir, media_root=Path(media_root).resolve(),
            host=cluster.host, port=cluster.port, workers=cluster.workers,
            redis_url=redis_url, embedded_redis_port=embedded, grace_s=cluster.shutdown_grace_s,
            gunicorn_workers=cluster.gunicorn_workers, gunicorn_threads=cluster.gunicorn_threads,
            auth_required=auth_required, embedded_redis_password=password,
        )

    def child_environment(self, **extra: str) -> dict[str, str]:
        """What the cluster decides for its children; the rest they inherit from supervisord
        (the environment ``make run`` was started with)."""
        return {
            "REDIS_URL": self.redis_url,
            "MEDIA_ROOT": str(self.media_root),
            "VAR_DIR": str(self.var_dir),
            **extra,
        }

    @property
    def conf_path(self) -> Path:
        return self.var_dir / "supervisord.conf"

    @property
    def redis_conf_path(self) -> Path:
        return self.var_dir / "redis" / "redis.conf"

    def redis_conf(self) -> str:
        """The embedded Redis's config file (0600: it holds the password, which a command
        line would show to every user of the machine in ``ps``)."""
        return f"requirepass {self.embedded_redis_password}\n"

    @property
    def socket_path(self) -> Path:
        path = self.var_dir / "run" / "supervisor.sock"
        if len(str(path)) > SOCKET_PATH_MAX:  # unix socket paths are short
            path = Path(tempfile.gettempdir()) / f"imgproc-{abs(hash(str(self.var_dir)))}.sock"
        return path

    def worker_ids(self) -> list[str]:
        return [f"{WORKER_PREFIX}{i}" for i in range(1, self.workers + 1)]

    def supervisor_conf(self) -> str:
        log_dir = self.var_dir / "log"
        common = f"directory={self.base_dir}\nautostart=true\nstartsecs=1\nredirect_stderr=true\n"
        # SIGTERM (and SIGKILL after stopwaitsecs) to the program's whole process group.
        as_group = "stopasgroup=true\nkillasgroup=true"
        sections = [
            "[supervisord]",
            f"logfile={log_dir / 'supervisord.log'}",
            f"pidfile={self.var_dir / 'run' / 'supervisord.pid'}",
            "nodaemon=true",
            "loglevel=info",
            "",
            "[unix_http_server]",
            f"file={self.socket_path}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{self.socket_path}",
            "",
        ]
        if self.embedded_redis_port:
            sections += [
                "[program:redis]",
                f"command={redis_server_binary()} {self.redis_conf_path} "
                f"--port {self.embedded_redis_port} "
                f"--bind 127.0.0.1 --dir {self.var_dir / 'redis'} --appendonly yes "
                "--appendfsync everysec --save \"\" --protected-mode no",
                "priority=1",
                "autorestart=true",
                # Its data files (append-only file, rewrites), like its directory (0700), are
                # this user's alone: they hold every task payload.
                "umask=077",
                as_group,
                f"stdout_logfile={log_dir / 'redis.log'}",
                common,
            ]
        sections += [
            "[program:api]",
            f"command={self.python} -m gunicorn project.asgi:application -c {GUNICORN_CONF} "
            f"--bind {self.host}:{self.port} --workers {self.gunicorn_workers} "
            f"--threads {self.gunicorn_threads} --timeout 120",
            # The gunicorn processes' HTTP metrics, added up by /metrics (emptied at start).
            "environment=" + supervisor_environment(self.child_environment(
                PROMETHEUS_MULTIPROC_DIR=str(self.var_dir / "run" / "metrics"))),
            "priority=10",
            "autorestart=true",
            "stopwaitsecs=30",
            as_group,  # the gunicorn master and its worker processes
            f"stdout_logfile={log_dir / 'api.log'}",
            common,
        ]
        for worker_id in self.worker_ids():
            # A worker that dies (SIGKILL, OOM, a crash) is restarted under the same id and
            # rejoins, like a container with `restart: unless-stopped`; one stopped on purpose
            # (`make worker-stop`, exit 0) stays down until `make worker-start`.
            sections += [
                f"[program:{worker_id}]",
                f"command={self.python} -m workers",
                "environment="
                + supervisor_environment(self.child_environment(WORKER_ID=worker_id)),
                "priority=20",
                "autorestart=unexpected",
                "exitcodes=0",
                "startretries=10",
                # SIGTERM to the worker alone, which finishes its task in hand and then
                # stops its task process itself (the task process ignores SIGTERM); the
                # SIGKILL after stopwaitsecs still takes the whole group.
                "stopsignal=TERM",
                "stopasgroup=false",
                "killasgroup=true",
                f"stopwaitsecs={int(self.grace_s) + 5}",
                f"stdout_logfile={log_dir / (worker_id + '.log')}",
                common,
            ]
        return "\n".join(sections)

    def banner(self) -> str:
        api = f"http://{self.host}:{self.port}"
        redis = (f"embedded redis-server on 127.0.0.1:{self.embedded_redis_port} "
                 f"(password in {self.redis_conf_path}, data in {self.var_dir / 'redis'})"
                 if self.embedded_redis_port else f"REDIS_URL={redact_url(self.redis_url)}")
        auth = ("on: send `Authorization: Bearer <key>` (python manage.py createapikey NAME)"
                if self.auth_required else
                f"OFF: anyone who can reach {self.host} may call the API (AUTH_REQUIRED=true "
                "requires keys)")
        key = " -H 'Authorization: Bearer $KEY'" if self.auth_required else ""
        seed = ('{"filters": ["sharpen", "edges"], "filter_params": {"sharpen": '
                '{"intensity": 3}, "edges": {"threshold1": 50, "threshold2": 150}}}')
        curls = "\n".join(
            f"  curl -X POST {api}/api/process-batch/{mode}/{key} "
            f"-H 'Content-Type: application/json' -d '{seed}'"
            for mode in ("threading", "multiprocessing", "distributed")
        )
        return f"""
Image-processing service starting: API + {self.workers} workers + {redis}
  API          {api}/api/
  Docs         {api}/api/docs/
  Health       {api}/api/health/
  Workers      {api}/api/workers/status/
  Console      {api}/console/
  Logs         {self.var_dir / 'log'}/
  Auth         {auth}

Try:
{curls}
  curl{key} {api}/api/workers/status/

A batch of about a minute to stop and kill workers under: make demo
Workers:
  make ps                        make worker-stop ID=worker-2 (graceful)
  make worker-kill ID=worker-2   make worker-start ID=worker-2
Stop everything: Ctrl+C here, or make stop
"""


def redact_url(url: str) -> str:
    """``url`` without its password (for banners and logs)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}://{user}:***@{host}"


def run_cluster(plan: ClusterPlan) -> int:
    """Write the supervisord config and replace this process with supervisord."""
    for sub in ("log", "run"):
        (plan.var_dir / sub).mkdir(parents=True, exist_ok=True)
    plan.media_root.mkdir(parents=True, exist_ok=True)
    if plan.embedded_redis_port:
        # Redis's --dir: its data files (0600 through the program's umask) and the file with
        # its password, in a directory only this user can enter.
        private_dir(plan.redis_conf_path.parent)
        write_private(plan.redis_conf_path, plan.redis_conf())
    write_private(plan.conf_path, plan.supervisor_conf())  # the children's REDIS_URL is in it
    print(plan.banner(), flush=True)
    supervisord = shutil.which("supervisord", path=str(Path(plan.python).parent)) or "supervisord"
    os.execv(supervisord, [supervisord, "-n", "-c", str(plan.conf_path)])
    return 1  # not reached
