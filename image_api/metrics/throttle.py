"""Rate-limit metrics, counted by each API process as it decides (under gunicorn each
process writes its own samples and a scrape adds them up, as for the HTTP histogram)."""

from __future__ import annotations

from prometheus_client import Counter

THROTTLED = Counter(
    "imgproc_throttled",
    "Requests refused with 429 throttled (over THROTTLE_RATE and THROTTLE_BURST)",
    registry=None,
)
THROTTLE_UNAVAILABLE = Counter(
    "imgproc_throttle_unavailable",
    "Requests served without a rate-limit decision because Redis did not answer (the "
    "throttle fails open)",
    registry=None,
)
