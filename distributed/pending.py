"""How long pending work has waited, read at the head of each tenant's list: the metrics'
gauge and the status's ``oldest_pending`` alert read it the same way."""

from __future__ import annotations

import redis

from distributed.errors import translate_redis_errors
from distributed.keys import PRIORITIES, Keys

# Tenants read per priority when looking for the oldest pending task (a bound on the cost
# of a scrape; the ring holds only tenants with pending work).
MAX_TENANTS_SCANNED = 1000


def oldest_pending_ms(client: redis.Redis, keys: Keys) -> dict[str, int | None]:
    """Per priority, when its longest-waiting pending task became pending (epoch ms: when it
    was submitted, or when its retry fell due), or None with nothing pending. Reads the head
    of each tenant's list (the oldest of that tenant): O(tenants with pending work)."""
    with translate_redis_errors():
        pipe = client.pipeline(transaction=False)
        for priority in PRIORITIES:
            pipe.lrange(keys.tenant_ring(priority), 0, MAX_TENANTS_SCANNED - 1)
        rings = pipe.execute()
        lists = [(p, t.decode()) for p, ring in zip(PRIORITIES, rings, strict=True)
                 for t in dict.fromkeys(ring)]
        pipe = client.pipeline(transaction=False)
        for priority, tenant in lists:
            pipe.lindex(keys.tenant_queue(priority, tenant), 0)
        heads = pipe.execute()
        found = [(p, h.decode()) for (p, _), h in zip(lists, heads, strict=True) if h]
        pipe = client.pipeline(transaction=False)
        for _, task_id in found:
            pipe.hmget(keys.task(task_id), "enqueued_at", "retry_at")
        times = pipe.execute()
    oldest: dict[str, int | None] = dict.fromkeys(PRIORITIES)
    for (priority, _), (enqueued, retry_at) in zip(found, times, strict=True):
        since = max(int(enqueued or 0), int(retry_at or 0))
        if since and (oldest[priority] is None or since < (oldest[priority] or 0)):
            oldest[priority] = since
    return oldest
