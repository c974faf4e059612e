"""Health rules for workers and alerts for the cluster: pure functions (see the README)."""

from __future__ import annotations

from dataclasses import dataclass

FAILURE_DEGRADED = 0.10
FAILURE_UNHEALTHY = 0.50
MIN_SAMPLE = 4


@dataclass(frozen=True)
class Verdict:
    status: str  # healthy | degraded | unhealthy | dead | stopped
    rule: str


def worker_health(
    *,
    heartbeat_age_s: float,
    interval_s: float,
    timeout_s: float,
    recent_total: int,
    recent_failed: int,
    departed_state: str | None = None,
) -> Verdict:
    """Decide a worker's status; ``rule`` names the rule that decided it.

    - stopped: it deregistered (graceful shutdown, or drained on request).
    - dead: reaped, or no heartbeat for more than the timeout (3 heartbeat intervals).
    - unhealthy: heartbeat late by more than 2 intervals, or >= 50% of its recent tasks failed.
    - degraded: heartbeat late by more than 1.5 intervals, or >= 10% of its recent tasks failed.
    - healthy: otherwise.
    Failure rates count only with at least 4 recent tasks.
    """
    if departed_state == "stopped":
        return Verdict("stopped", "deregistered on a graceful shutdown")
    if departed_state == "drained":
        return Verdict("stopped", "drained on request: finished its task and left")
    if departed_state is not None or heartbeat_age_s > timeout_s:
        return Verdict(
            "dead", f"no heartbeat for {heartbeat_age_s:.1f}s > timeout {timeout_s:.1f}s"
        )
    rate = recent_failed / recent_total if recent_total >= MIN_SAMPLE else 0.0
    if rate >= FAILURE_UNHEALTHY:
        return Verdict(
            "unhealthy", f"{rate:.0%} of the last {recent_total} tasks failed (>= 50%)"
        )
    if heartbeat_age_s > 2 * interval_s:
        return Verdict(
            "unhealthy",
            f"heartbeat {heartbeat_age_s:.1f}s old > 2 intervals ({2 * interval_s:.1f}s)",
        )
    if rate >= FAILURE_DEGRADED:
        return Verdict("degraded", f"{rate:.0%} of the last {recent_total} tasks failed (>= 10%)")
    if heartbeat_age_s > 1.5 * interval_s:
        return Verdict(
            "degraded", f"heartbeat {heartbeat_age_s:.1f}s old > 1.5 intervals "
            f"({1.5 * interval_s:.1f}s)"
        )
    return Verdict("healthy", f"heartbeat {heartbeat_age_s:.1f}s old, failure rate {rate:.0%}")


@dataclass(frozen=True)
class Alert:
    code: str
    severity: str
    message: str


def cluster_alerts(
    *,
    live_workers: int,
    open_tasks: int,
    dead_letters: int,
    dead_letter_threshold: int,
    recent_total: int,
    recent_failed: int,
    failure_rate_threshold: float,
    died: tuple[tuple[str, float], ...] = (),
    oldest_pending_s: float | None = None,
    oldest_pending_threshold_s: float = float("inf"),
) -> list[Alert]:
    """The alerts of the status page. ``died``: (worker id, seconds since its last
    heartbeat) of the workers that died recently (stopped ones are not listed);
    ``oldest_pending_s``: age of the oldest pending task, None when none is pending."""
    alerts = []
    for worker_id, age_s in died:
        alerts.append(Alert("worker_died", "critical" if live_workers == 0 else "warning",
                            f"worker {worker_id} died (last heartbeat {age_s:.0f}s ago); "
                            f"its tasks go to the {live_workers} live "
                            f"worker{'' if live_workers == 1 else 's'}"))
    if oldest_pending_s is not None and oldest_pending_s > oldest_pending_threshold_s:
        alerts.append(Alert(
            "oldest_pending", "warning",
            f"the oldest pending task has waited {oldest_pending_s:.0f}s > "
            f"{oldest_pending_threshold_s:.0f}s",
        ))
    if live_workers == 0:
        severity = "critical" if open_tasks else "warning"
        alerts.append(Alert("no_live_worker", severity,
                            f"no live worker; {open_tasks} tasks waiting"))
    if dead_letters > dead_letter_threshold:
        alerts.append(Alert("dead_letters", "warning",
                            f"{dead_letters} dead letters > threshold {dead_letter_threshold}"))
    if recent_total >= MIN_SAMPLE and recent_failed / recent_total > failure_rate_threshold:
        alerts.append(Alert(
            "failure_rate", "warning",
            f"{recent_failed / recent_total:.0%} of recent tasks failed > "
            f"{failure_rate_threshold:.0%}",
        ))
    return alerts
