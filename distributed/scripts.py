"""Loads the Lua scripts beside this module (each prefixed with lua/lib.lua)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import redis
from redis.commands.core import Script

LUA_DIR = Path(__file__).with_name("lua")
SCRIPT_NAMES = (
    "enqueue", "fetch", "claim_expired", "start", "complete", "fail", "renew", "release",
    "promote", "dead_letters", "reap", "cancel", "delete_job", "drain", "history",
    "callback_claim", "callback_record", "ratelimit", "usage_reserve", "usage_release",
)


@cache
def source(name: str) -> str:
    if name not in SCRIPT_NAMES:
        raise KeyError(name)
    return (LUA_DIR / "lib.lua").read_text() + "\n" + (LUA_DIR / f"{name}.lua").read_text()


class Scripts:
    """Registered scripts of one client. redis-py's Script reloads a script after NOSCRIPT
    (e.g. when the server restarted and lost its script cache)."""

    def __init__(self, client: redis.Redis) -> None:
        self._scripts: dict[str, Script] = {
            name: client.register_script(source(name)) for name in SCRIPT_NAMES
        }

    def __getitem__(self, name: str) -> Script:
        return self._scripts[name]
