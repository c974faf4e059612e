"""Sending callbacks: one round (:func:`send_due`) claims the due callbacks of both outboxes,
renders each job as its owner would read it, POSTs them (in parallel, each attempt bounded by
CALLBACK_TIMEOUT_SECONDS) and records every attempt. :func:`start_sender` runs rounds in a
thread of each API process, every CALLBACK_POLL_SECONDS and at once when a local job with a
callback is recorded (:func:`wake`).

The body is ``{"event": "job.finished", "delivery_id", "job"}``, ``job`` being what
``GET /api/jobs/<id>/`` answers its owner; ``delivery_id`` (also the ``X-Imgproc-Delivery``
header) is the same for every attempt of one settlement of the job, so a receiver that got a
delivery twice (at-least-once) can tell.
"""

from __future__ import annotations

import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.db import connection
from rest_framework.renderers import JSONRenderer

from common.webhooks import Attempt, deliver
from distributed.callbacks import Claim, Outcome
from distributed.clock import now_ms
from distributed.errors import RedisUnavailable
from distributed.retry import compute_backoff
from image_api.background import start_once
from image_api.broker import queue_config
from image_api.callbacks.outbox import LocalOutbox, Outbox, RedisOutbox
from image_api.callbacks.signing import tenant_secret
from image_api.jobs.selectors import job_get
from image_api.jobs.serializers import job_serializer_class
from image_api.metrics.callbacks import CALLBACK_ATTEMPTS
from image_api.tenancy import Caller

logger = logging.getLogger(__name__)

EVENT = "job.finished"
ROUND_LIMIT = 16  # callbacks claimed per outbox and round
SEND_THREADS = 8  # attempts in flight at once
ATTEMPTS_KEPT = 20  # attempts shown on a job (the newest)
GONE = 410  # a receiver that answers 410 Gone wants no more attempts

_wake = threading.Event()
_started = threading.Event()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def decide(attempt: Attempt, tries_before: int, *, max_attempts: int, base_s: float,
           max_s: float, rng: random.Random | None = None) -> tuple[Outcome, float]:
    """What follows an attempt: ('delivered', 0), ('failed', 0) (given up: refused URL,
    410 Gone, or the last allowed attempt) or ('retry', seconds to wait: exponential with
    jitter, see ``distributed.retry.compute_backoff``, or longer if the receiver's
    Retry-After asks, never past ``max_s``)."""
    if attempt.ok:
        return "delivered", 0.0
    refused = attempt.error is not None and attempt.error.startswith("refused:")
    if refused or attempt.status_code == GONE or tries_before + 1 >= max_attempts:
        return "failed", 0.0
    wait = compute_backoff(tries_before + 1, base_s=base_s, max_s=max_s, rng=rng)
    if attempt.retry_after_s is not None:
        wait = max(wait, min(attempt.retry_after_s, max_s))
    return "retry", wait


class _Origin:
    """What ``image_api.schema.absolute_url`` needs of a request: the job's URLs start where
    it was submitted."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def build_absolute_uri(self, path: str) -> str:
        return f"{self.base_url}{path}"


def delivery_id(claim: Claim) -> str:
    return f"{claim.job_id}.{claim.finished_at_ms}"


def render(claim: Claim) -> bytes | None:
    """The body of ``claim``'s callback; None when its job no longer exists."""
    job = job_get(claim.job_id, Caller(tenant=claim.tenant, admin=False))
    if job is None:
        return None
    data = job_serializer_class(job)(job, context={"request": _Origin(claim.base_url)}).data
    body: dict[str, Any] = {"event": EVENT, "delivery_id": delivery_id(claim), "job": data}
    return bytes(JSONRenderer().render(body))


def outboxes() -> list[Outbox]:
    """The outboxes this process sends from: the database's, and Redis's when configured."""
    found: list[Outbox] = [LocalOutbox()]
    if queue_config().redis_url:
        found.append(RedisOutbox())
    return found


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(SEND_THREADS, thread_name_prefix="callback-send")
        return _pool


# (its outbox, the claim, the body to send, or why there is none)
Work = tuple[Outbox, Claim, bytes | None, str | None]


def _post(item: Work) -> Attempt:
    _, claim, body, problem = item
    if body is None:
        return Attempt(now_ms(), None, problem or "no body", 0.0)
    return deliver(
        claim.url, body, secret=tenant_secret(claim.tenant),
        allow_private=bool(settings.CALLBACK_ALLOW_PRIVATE),
        timeout_s=float(settings.CALLBACK_TIMEOUT_SECONDS),
        headers={"X-Imgproc-Event": EVENT, "X-Imgproc-Delivery": delivery_id(claim),
                 "X-Imgproc-Attempt": str(claim.tries + 1)},
    )


def _claim_all(lease_ms: int, limit: int) -> list[Work]:
    work: list[Work] = []
    for outbox in outboxes():
        try:
            claims = outbox.claim(lease_ms=lease_ms, limit=limit)
        except RedisUnavailable as exc:
            logger.warning("callback.outbox_unavailable", extra={"error": str(exc)})
            continue
        for claim in claims:
            try:
                body = render(claim)
            except RedisUnavailable:
                continue  # its claim expires and it is sent once Redis answers
            except Exception as exc:  # a job that cannot be rendered: a failed attempt
                logger.exception("callback.render_failed", extra={"job": claim.job_id})
                work.append((outbox, claim, None,
                             f"could not render the job: {type(exc).__name__}"))
                continue
            work.append((outbox, claim, body, None if body else "the job no longer exists"))
    return work


def send_due(*, limit: int = ROUND_LIMIT) -> int:
    """One round: claim, render, POST and record the due callbacks (at most ``limit`` of
    each outbox); how many attempts were made."""
    timeout_s = float(settings.CALLBACK_TIMEOUT_SECONDS)
    # Long enough for the round's slowest attempt, so no other sender takes a claim in use.
    lease_ms = int(max(30.0, 4 * timeout_s) * 1000)
    work = _claim_all(lease_ms, limit)
    if not work:
        return 0
    attempts = list(_executor().map(_post, work))
    for (outbox, claim, _, _), attempt in zip(work, attempts, strict=True):
        outcome, wait_s = decide(
            attempt, claim.tries, max_attempts=int(settings.CALLBACK_MAX_ATTEMPTS),
            base_s=float(settings.CALLBACK_RETRY_BASE_SECONDS),
            max_s=float(settings.CALLBACK_RETRY_MAX_SECONDS))
        retry_at_ms = now_ms() + int(wait_s * 1000) if outcome == "retry" else 0
        try:
            verdict = outbox.record(claim, asdict(attempt), outcome, retry_at_ms=retry_at_ms,
                                    attempts_kept=ATTEMPTS_KEPT)
        except RedisUnavailable as exc:
            # The claim's lease runs out and the callback is sent again: at least once.
            logger.warning("callback.record_failed", extra={"job": claim.job_id,
                                                            "error": str(exc)})
            continue
        CALLBACK_ATTEMPTS.labels(outcome).inc()
        logger.info("callback.attempt", extra={
            "job": claim.job_id, "outcome": outcome, "attempt": claim.tries + 1,
            "status_code": attempt.status_code, "error": attempt.error,
            "duration_ms": attempt.duration_ms, "verdict": verdict,
            "retry_in_s": round(wait_s, 2) if outcome == "retry" else None,
        })
    return len(work)


def wake() -> None:
    """Send due callbacks now (a local job with a callback was just recorded)."""
    _wake.set()


def _run(interval_s: float, stop: threading.Event) -> None:
    while not stop.is_set():
        _wake.wait(interval_s)
        _wake.clear()
        if stop.is_set():
            break
        try:
            while send_due() >= ROUND_LIMIT:  # a backlog: keep going
                pass
        except Exception:  # a failed round is logged and the next one tries again
            logger.exception("callback.round_failed")
            connection.close()  # a broken database connection is opened afresh


def start_sender(interval_s: float | None = None) -> threading.Event | None:
    """Start this process's sender thread (once); setting the event returned stops it. None if
    it runs already or CALLBACK_POLL_SECONDS is 0."""
    interval = float(settings.CALLBACK_POLL_SECONDS if interval_s is None else interval_s)
    return start_once("callback-sender", _started, interval, _run)
