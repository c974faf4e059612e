"""Refuse to serve an open door: the checks a server makes before it binds.

Like Redis's protected mode, the API will not listen on a non-loopback address while anyone
may call it without a key (AUTH_REQUIRED off), unless ALLOW_ANONYMOUS says so explicitly; and
it will not run off a laptop on the built-in, public SECRET_KEY. gunicorn calls
:func:`check_binds` from its ``on_starting`` hook (project/gunicorn_conf.py), ``manage.py
runcluster`` before it starts anything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from common.settings import ApiSettings


class ExposureRefused(RuntimeError):
    """The server must not start as configured; the message says what to change."""


def bind_host(bind: str) -> str:
    """The host of a gunicorn bind (``host:port``, ``[v6]:port``, ``unix:path``, ``fd://n``)."""
    if bind.startswith(("unix:", "fd://")):
        return "unix"
    if bind.startswith("["):
        return bind[1:].partition("]")[0]
    host, sep, port = bind.rpartition(":")
    return host if sep and port.isdigit() else bind


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach ``host`` (a Unix socket counts as local)."""
    if host in ("unix", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: it may resolve to anything


def problems(hosts: Iterable[str], settings: ApiSettings) -> list[str]:
    """What forbids serving on ``hosts`` with ``settings`` (empty: nothing)."""
    exposed = sorted({host for host in hosts if not is_loopback(host)})
    if not exposed:
        return []
    where = ", ".join(exposed)
    found = []
    if not settings.auth_required and not settings.allow_anonymous:
        found.append(
            f"refusing to listen on {where} with AUTH_REQUIRED off: anyone who can reach it "
            "could submit, read and delete jobs. Set AUTH_REQUIRED=true (and create keys with "
            "`manage.py createapikey`), or set ALLOW_ANONYMOUS=true if this network is yours "
            "alone, or bind 127.0.0.1.")
    if settings.uses_builtin_secret_key:
        found.append(
            f"refusing to listen on {where} with the built-in DJANGO_SECRET_KEY, which is "
            "public: set DJANGO_SECRET_KEY to a long random value of your own.")
    return found


def check_binds(binds: Iterable[str], settings: ApiSettings | None = None) -> None:
    """Raise :class:`ExposureRefused` when serving on ``binds`` is not allowed."""
    found = problems(map(bind_host, binds), settings or ApiSettings.from_env())
    if found:
        raise ExposureRefused(" ".join(found))
