"""The due callbacks of both kinds of job, behind one interface (:class:`Outbox`):

- :class:`LocalOutbox`: jobs of the threading and multiprocessing modes, in the database.
  ``Job.callback_due_at`` (indexed) is the outbox: set when the job is recorded, moved to the
  lease's end by a claim (a conditional UPDATE: one sender wins), to the retry's time or to
  null by the record of an attempt.
- :class:`RedisOutbox`: distributed jobs (distributed/callbacks.py), whose entry the settling
  script wrote.

Both record attempts the same way and fence them the same way: an attempt whose claim is no
longer the entry's (another sender took it after the lease, or the job settled again) is kept
in the job's history but does not move the entry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from django.db import transaction

from distributed.callbacks import Claim, Outcome
from distributed.clock import now_ms
from image_api.broker import broker
from image_api.models import Job


class Outbox(Protocol):
    def claim(self, *, lease_ms: int, limit: int) -> list[Claim]: ...

    def record(self, claim: Claim, attempt: dict[str, Any], outcome: Outcome, *,
               retry_at_ms: int, attempts_kept: int) -> str: ...


def _when(ms: int) -> datetime:
    """Exact to the millisecond (a claim's token is compared with the stored column)."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC) + timedelta(milliseconds=ms % 1000)


def _ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


class LocalOutbox:
    """The database's due callbacks (jobs of the local modes)."""

    def claim(self, *, lease_ms: int, limit: int) -> list[Claim]:
        now = now_ms()
        token = now + lease_ms
        due = list(Job.objects.filter(callback_due_at__lte=_when(now))
                   .order_by("callback_due_at")
                   .values_list("id", "callback_due_at", "callback_url", "callback",
                                "finished_at", "owner")[:limit])
        claims = []
        for job_id, due_at, url, record, finished, owner in due:
            won = Job.objects.filter(pk=job_id, callback_due_at=due_at).update(
                callback_due_at=_when(token))
            if won:
                claims.append(Claim(
                    job_id=job_id, token=token, url=url, tries=int(record.get("tries", 0)),
                    finished_at_ms=_ms(finished) if finished else now, tenant=owner,
                    base_url=str(record.get("base_url", ""))))
        return claims

    def record(self, claim: Claim, attempt: dict[str, Any], outcome: Outcome, *,
               retry_at_ms: int, attempts_kept: int) -> str:
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=claim.job_id).first()
            if job is None:
                return "gone"
            record = dict(job.callback)
            record["attempts"] = [*record.get("attempts", []), attempt][-attempts_kept:]
            if job.callback_due_at is None or _ms(job.callback_due_at) != claim.token:
                job.callback = record
                job.save(update_fields=["callback"])
                return "stale"
            record["tries"] = int(record.get("tries", 0)) + 1
            record["state"] = "pending" if outcome == "retry" else outcome
            job.callback_due_at = _when(retry_at_ms) if outcome == "retry" else None
            job.callback = record
            job.save(update_fields=["callback", "callback_due_at"])
        return "recorded"


class RedisOutbox:
    """The distributed jobs' due callbacks (the outbox in Redis)."""

    def claim(self, *, lease_ms: int, limit: int) -> list[Claim]:
        return broker().callbacks.claim(lease_ms=lease_ms, limit=limit)

    def record(self, claim: Claim, attempt: dict[str, Any], outcome: Outcome, *,
               retry_at_ms: int, attempts_kept: int) -> str:
        return broker().callbacks.record(claim, attempt, outcome, retry_at_ms=retry_at_ms,
                                         attempts_kept=attempts_kept)


def local_callback_fields(url: str, base_url: str, finished_at: datetime) -> dict[str, Any]:
    """The Job columns of a local job with a callback: due as soon as it is recorded."""
    if not url:
        return {}
    due = finished_at.replace(microsecond=finished_at.microsecond // 1000 * 1000)
    return {"callback_url": url, "callback_due_at": due,
            "callback": {"state": "pending", "tries": 0, "attempts": [], "base_url": base_url}}


def callback_block(url: str, state: str, attempts: list[Any],
                   next_at_ms: int | None) -> dict[str, Any]:
    """The ``callback`` block of a job (both modes): attempts' times as datetimes."""
    return {
        "url": url,
        "state": state,
        "attempts": [{"at": _when(int(a.get("at_ms", 0))), "status_code": a.get("status_code"),
                      "error": a.get("error"), "duration_ms": a.get("duration_ms")}
                     for a in attempts if isinstance(a, dict)],
        "next_attempt_at": _when(next_at_ms) if next_at_ms else None,
    }


def local_callback_block(job: Job) -> dict[str, Any] | None:
    if not job.callback_url:
        return None
    record = job.callback or {}
    state = str(record.get("state", "pending"))
    next_at = _ms(job.callback_due_at) if job.callback_due_at and state == "pending" else None
    return callback_block(job.callback_url, state, list(record.get("attempts", [])), next_at)
