"""The API's rate limit (image_api/throttle.py): a group nested in ``ApiSettings.throttle``.

``distributed.ratelimit`` runs the algorithm; this declares its two variables and checks
THROTTLE_RATE when the process starts, so a malformed rate stops it, naming the variable,
instead of being found at the first request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.env import SettingsError, Var, setting
from distributed.ratelimit import default_burst, parse_rate

THROTTLE_RATE = Var(
    "THROTTLE_RATE", "requests per API key (or per client address without a key), e.g. "
    "`1200/min` (per s, min, h or day): the steady pace; over it: 429 with Retry-After. "
    "Counted in Redis when REDIS_URL is set (one limit for every API process and host), "
    "else in each process's memory (each process its own limit); `off`: no throttling",
    unit="rate",
)
OFF = "off"
THROTTLE_BURST = Var(
    "THROTTLE_BURST", "requests a key may send at once beyond that pace (the GCRA's burst "
    "tolerance): in any T seconds at most THROTTLE_RATE x T + THROTTLE_BURST + 1 requests "
    "are admitted; 0: one at a time, evenly spaced", unit="requests", minimum=0,
    default_doc="a tenth of THROTTLE_RATE's count per minute, rounded down (`120` for "
    "`1200/min`)",
)


def checked_rate(rate: str) -> str:
    """``rate`` if it parses, "" for ``off``; else :class:`SettingsError` naming
    THROTTLE_RATE. (An empty variable is unset, hence the default: ``off`` says "none".)"""
    if rate.strip().lower() == OFF:
        return ""
    if rate:
        try:
            parse_rate(rate)
        except ValueError as exc:
            raise SettingsError(f"{THROTTLE_RATE.name}={rate!r}: {exc}") from None
    return rate


def _tenth_of_the_rate(values: Mapping[str, Any]) -> int:
    return default_burst(checked_rate(values["rate"]))


@dataclass(frozen=True)
class ThrottleSettings:
    """THROTTLE_RATE and THROTTLE_BURST (see ``distributed.ratelimit.Limit``)."""

    rate: str = setting(THROTTLE_RATE, "1200/min")
    burst: int = setting(THROTTLE_BURST, 120, derive=_tenth_of_the_rate)

    def __post_init__(self) -> None:
        # Django's THROTTLE_RATE is then "" for no throttling, as tests set it.
        object.__setattr__(self, "rate", checked_rate(self.rate))
