"""The cluster at a glance: workers with their health, queue figures, throughput, alerts.

Cost is O(workers) + a constant number of O(1) Redis calls: it never scans tasks.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import redis

from distributed.clock import now_ms
from distributed.config import QueueConfig
from distributed.errors import translate_redis_errors
from distributed.health import cluster_alerts, worker_health
from distributed.keys import PRIORITIES, TPUT_BUCKET_S
from distributed.pending import oldest_pending_ms
from distributed.registry import Registry

GONE = ("dead", "stopped")
COUNTERS = (
    "accepted", "running", "delayed", "completed", "dead", "cancelled", "retried", "reclaimed",
    "fenced", "failed_attempts", "workers_reaped", "requeued",
)


def queue_figures(client: redis.Redis, config: QueueConfig) -> dict[str, Any]:
    k = config.keys
    now = now_ms()
    buckets = [now // 1000 // TPUT_BUCKET_S - i for i in range(1, 13)]
    with translate_redis_errors():
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(k.stats())
        pipe.zcard(k.delayed())
        pipe.zcard(k.dead())
        pipe.mget([k.tput(b) for b in buckets])
        stats_raw, delayed, dead, tput = pipe.execute()
    stats = {key.decode(): int(value) for key, value in stats_raw.items()}
    pending = {p: stats.get(f"pending:{p}", 0) for p in PRIORITIES}
    counts = {name: stats.get(name, 0) for name in COUNTERS}
    done = [int(v) if v else 0 for v in tput]
    return {
        "pending": pending,
        "pending_total": sum(pending.values()),
        "in_progress": counts["running"],
        "delayed": counts["delayed"],
        "completed": counts["completed"],
        "dead_lettered": counts["dead"],
        "cancelled": counts["cancelled"],
        "accepted": counts["accepted"],
        "failed_attempts": counts["failed_attempts"],
        "retried": counts["retried"],
        "reclaimed": counts["reclaimed"],
        "fenced_completions": counts["fenced"],
        "workers_reaped": counts["workers_reaped"],
        "requeued": counts["requeued"],
        "delayed_set_size": int(delayed),
        "dead_letter_set_size": int(dead),
        "throughput": {
            "window_s": len(buckets) * TPUT_BUCKET_S,
            "completed_last_10s": sum(done[:2]),
            "completed_last_60s": sum(done),
            "tasks_per_second_60s": round(sum(done) / (len(buckets) * TPUT_BUCKET_S), 3),
        },
    }


def oldest_pending_age_s(oldest_ms: dict[str, int | None], now: int) -> float | None:
    """Seconds the longest-waiting pending task has waited (since its submission or since its
    retry fell due; None: nothing pending), from ``oldest_pending_ms``'s reading per priority
    (O(tenants with pending work), never O(tasks))."""
    times = [ms for ms in oldest_ms.values() if ms is not None]
    return max(0.0, (now - min(times)) / 1000) if times else None


def _worker_view(record: dict[str, Any], now: int, config: QueueConfig) -> dict[str, Any]:
    departed = record["_departed"]
    # A live worker's score is its last heartbeat; a departed one's is when it left.
    last_ms = int(record.get("last_heartbeat_ms") or record["_score_ms"]) if departed else (
        record["_score_ms"])
    age_s = max(0.0, (now - last_ms) / 1000)
    recent_total = int(record.get("recent_total", 0))
    recent_failed = int(record.get("recent_failed", 0))
    verdict = worker_health(
        heartbeat_age_s=age_s,
        interval_s=config.heartbeat_interval_s,
        timeout_s=config.heartbeat_timeout_s,
        recent_total=recent_total,
        recent_failed=recent_failed,
        departed_state=record.get("state", "dead") if departed else None,
    )
    started = int(record.get("started_at_ms", 0) or 0)
    return {
        "id": record["id"],
        "hostname": record.get("hostname"),
        "pid": int(record["pid"]) if record.get("pid") else None,
        "version": record.get("version"),
        "status": verdict.status,
        "status_rule": verdict.rule,
        # Asked to drain and not gone yet: draining, whatever its last heartbeat said.
        "state": "draining" if record.get("drain") and not departed else record.get("state"),
        "draining": bool(record.get("drain")) and not departed,
        "seconds_since_heartbeat": round(age_s, 2),
        # A dead or stopped worker works on nothing: what it held is redelivered elsewhere.
        "current_task": None if verdict.status in GONE else record.get("current_task") or None,
        "tasks_completed": int(record.get("tasks_completed", 0)),
        "tasks_failed": int(record.get("tasks_failed", 0)),
        "recent_total": recent_total,
        "recent_failed": recent_failed,
        "uptime_s": round((now - started) / 1000, 1) if started and not departed else None,
        "concurrency": int(record.get("concurrency", 0) or 0),
        "filters": json.loads(record["filters"]) if record.get("filters") else [],
        "started_at_ms": started or None,
    }


def worker_view(record: dict[str, Any], now: int, config: QueueConfig) -> dict[str, Any]:
    """One worker as in the status (a raw record of ``Registry.snapshot`` or ``record``)."""
    return _worker_view(record, now, config)


def cluster_status(
    client: redis.Redis, config: QueueConfig, *, oldest_ms: dict[str, int | None] | None = None
) -> dict[str, Any]:
    """The status page's figures. ``oldest_ms``: ``oldest_pending_ms`` already read by the
    caller (the metrics scrape), so it is not read twice."""
    now, records = Registry(client, config).snapshot()
    workers = [_worker_view(r, now, config) for r in records]
    workers.sort(key=lambda w: w["id"])
    queue = queue_figures(client, config)
    if oldest_ms is None:
        oldest_ms = oldest_pending_ms(client, config.keys)
    oldest = oldest_pending_age_s(oldest_ms, now)
    queue["oldest_pending_s"] = None if oldest is None else round(oldest, 1)
    live = [w for w in workers if w["status"] in ("healthy", "degraded", "unhealthy")]
    recent_total = sum(w["recent_total"] for w in live)
    recent_failed = sum(w["recent_failed"] for w in live)
    alerts = cluster_alerts(
        live_workers=len(live),
        open_tasks=queue["pending_total"] + queue["in_progress"] + queue["delayed"],
        dead_letters=queue["dead_lettered"],
        dead_letter_threshold=config.alert_dead_letters,
        recent_total=recent_total,
        recent_failed=recent_failed,
        failure_rate_threshold=config.alert_failure_rate,
        died=tuple((w["id"], w["seconds_since_heartbeat"]) for w in workers
                   if w["status"] == "dead"
                   and w["seconds_since_heartbeat"] <= config.alert_worker_died_s),
        oldest_pending_s=oldest,
        oldest_pending_threshold_s=config.alert_oldest_pending_s,
    )
    summary: dict[str, int] = {}
    for w in workers:
        summary[w["status"]] = summary.get(w["status"], 0) + 1
    return {
        "generated_at_ms": now,
        "workers": workers,
        "worker_summary": summary,
        "queue": queue,
        "alerts": [asdict(a) for a in alerts],
        "rules": {
            "heartbeat_interval_s": config.heartbeat_interval_s,
            "heartbeat_timeout_s": config.heartbeat_timeout_s,
            "lease_s": config.lease_s,
            "max_retries": config.max_retries,
        },
    }
