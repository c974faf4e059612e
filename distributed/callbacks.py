"""The outbox of job-finished callbacks of distributed jobs ({p}:callbacks, keys.py).

The script that settles a job with a ``callback_url`` adds it to the outbox in the same step
(lib.lua ``job_settle``), so a job cannot finish without its callback being due. Senders (the
API processes, image_api/callbacks) :meth:`~CallbackOutbox.claim` due entries under a lease,
POST them, and :meth:`~CallbackOutbox.record` each attempt: the entry then leaves the outbox
(delivered, or given up) or is due again at the retry's time. A sender that dies mid-delivery
leaves its claims to expire: the next sender takes them (at-least-once; the receiver dedupes
on the delivery id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import redis

from distributed.clock import now_ms
from distributed.config import QueueConfig
from distributed.errors import translate_redis_errors
from distributed.scripts import Scripts

Outcome = Literal["delivered", "retry", "failed"]
JOB_FIELDS = ("callback_url", "callback_tries", "finished_at", "tenant", "callback_base")


@dataclass(frozen=True)
class Claim:
    """A due callback this sender holds until ``token`` (epoch ms, the lease's end)."""

    job_id: str
    token: int
    url: str
    tries: int  # attempts already recorded since the job last settled
    finished_at_ms: int
    tenant: str
    base_url: str  # where the job was submitted (its URLs in the body start there)


def _s(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class CallbackOutbox:
    """Claim and record job-finished callbacks for one :class:`QueueConfig`."""

    def __init__(self, client: redis.Redis, config: QueueConfig, scripts: Scripts) -> None:
        self.client = client
        self.keys = config.keys
        self.scripts = scripts

    def claim(self, *, lease_ms: int, limit: int, now: int | None = None) -> list[Claim]:
        """Take up to ``limit`` due callbacks for ``lease_ms``. Entries whose job is gone
        (expired, deleted) are dropped and not returned."""
        now = now_ms() if now is None else now
        k = self.keys
        with translate_redis_errors():
            flat = self.scripts["callback_claim"](keys=[k.callbacks()],
                                                  args=[now, lease_ms, limit])
            pairs = [(_s(flat[i]), int(_s(flat[i + 1]))) for i in range(0, len(flat), 2)]
            if not pairs:
                return []
            pipe = self.client.pipeline(transaction=False)
            for job_id, _ in pairs:
                pipe.hmget(k.job(job_id), JOB_FIELDS)
            rows = pipe.execute()
            claims, gone = [], []
            for (job_id, token), row in zip(pairs, rows, strict=True):
                url, tries, finished, tenant, base = (_s(v) for v in row)
                if not url or not finished:
                    gone.append(job_id)
                    continue
                claims.append(Claim(job_id, token, url, int(tries or 0), int(finished),
                                    tenant or "anonymous", base))
            if gone:
                self.client.zrem(k.callbacks(), *gone)
        return claims

    def record(self, claim: Claim, attempt: dict[str, Any], outcome: Outcome, *,
               retry_at_ms: int = 0, attempts_kept: int = 20) -> str:
        """Record ``attempt`` on the job and settle the entry (see callback_record.lua):
        'recorded', 'stale' (claimed again or the job settled again: left as it is) or
        'gone' (the job no longer exists)."""
        k = self.keys
        with translate_redis_errors():
            return _s(self.scripts["callback_record"](
                keys=[k.callbacks(), k.job(claim.job_id)],
                args=[claim.job_id, claim.token, json.dumps(attempt), outcome, retry_at_ms,
                      attempts_kept],
            ))

    def due_count(self) -> int:
        """Callbacks waiting (due now or later, claimed or not)."""
        with translate_redis_errors():
            return int(self.client.zcard(self.keys.callbacks()))


def callback_view(fields: dict[str, str]) -> dict[str, Any] | None:
    """The ``callback`` block of a job from its hash fields; None without a callback_url."""
    url = fields.get("callback_url")
    if not url:
        return None
    try:
        attempts = json.loads(fields.get("callback_attempts") or "[]")
    except ValueError:
        attempts = []
    next_at = fields.get("callback_next_at")
    state = fields.get("callback_state") or "waiting"  # the job has not finished yet
    return {
        "url": url,
        "state": state,
        "attempts": attempts if isinstance(attempts, list) else [],
        "next_attempt_at_ms": int(next_at) if next_at and state == "pending" else None,
    }
