"""Job-finished callbacks through the API: the check of ``callback_url`` at submission, the
signed POST of the finished job (local and distributed modes) to a real HTTP receiver on
127.0.0.1, retries with backoff, giving up, and the attempts shown on the job. A real Redis,
and a real worker where a task must run."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import socket
import time

import pytest
from rest_framework.test import APIClient

from common.webhooks import Attempt
from image_api.auth import create_key
from image_api.callbacks import sender
from image_api.callbacks.outbox import LocalOutbox, RedisOutbox
from image_api.models import Job
from tests.support.receiver import ReceivedRequest
from tests.support.redis import assert_counts_add_up
from tests.support.workers import wait_until

pytestmark = pytest.mark.django_db

SEED = {"filters": ["grayscale"]}
LOCAL = "/api/process-batch/threading/"
DISTRIBUTED = "/api/process-batch/distributed/"


@pytest.fixture(autouse=True)
def _callback_settings(settings):
    settings.CALLBACK_ALLOW_PRIVATE = True  # the receiver is on 127.0.0.1
    settings.CALLBACK_RETRY_BASE_SECONDS = 0.05
    settings.CALLBACK_RETRY_MAX_SECONDS = 0.2
    settings.CALLBACK_MAX_ATTEMPTS = 4
    settings.CALLBACK_TIMEOUT_SECONDS = 3


@pytest.fixture
def distributed(settings, queue_config, redis_client):
    settings.DISTRIBUTED = queue_config
    return queue_config


def key_client(secret: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return api


def verify(api: APIClient, request: ReceivedRequest) -> dict:
    """The body of a callback, after checking its signature with the secret the API gives
    the caller."""
    secret = api.get("/api/callbacks/secret/").json()["secret"]
    stamp = request.headers["X-Imgproc-Timestamp"]
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + request.body,
                        hashlib.sha256).hexdigest()
    assert request.headers["X-Imgproc-Signature"] == f"sha256={expected}"
    assert abs(int(stamp) - time.time()) < 60
    return json.loads(request.body)


def send_until(done, rounds: int = 100) -> None:
    """Run sender rounds (as the API's sender thread does) until ``done()``."""
    for _ in range(rounds):
        sender.send_due()
        if done():
            return
        time.sleep(0.05)
    raise AssertionError("the callback did not settle")


def callback_of(api: APIClient, job_id: str) -> dict:
    return api.get(f"/api/jobs/{job_id}/").json()["callback"]


# --- the policy ------------------------------------------------------------------------------

def attempt(status: int | None, error: str | None = None) -> Attempt:
    return Attempt(at_ms=1, status_code=status, error=error, duration_ms=1.0)


POLICY = {"max_attempts": 4, "base_s": 1.0, "max_s": 8.0}


def test_a_2xx_is_delivered_and_anything_else_is_retried_with_growing_waits():
    assert sender.decide(attempt(204), 0, **POLICY) == ("delivered", 0.0)
    waits = []
    for tries, status in enumerate([500, 429, None]):
        outcome, wait = sender.decide(attempt(status, None if status else "timed out"), tries,
                                      rng=random.Random(tries), **POLICY)
        assert outcome == "retry"
        waits.append(wait)
    # Equal jitter: between half and all of 1, 2, 4 s
    assert [0.5 <= waits[0] <= 1, 1 <= waits[1] <= 2, 2 <= waits[2] <= 4] == [True] * 3


def test_a_receivers_retry_after_lengthens_the_wait_up_to_the_longest_allowed():
    asked = Attempt(at_ms=1, status_code=503, error=None, duration_ms=1.0, retry_after_s=6)
    assert sender.decide(asked, 0, rng=random.Random(1), **POLICY) == ("retry", 6.0)
    greedy = Attempt(at_ms=1, status_code=429, error=None, duration_ms=1.0,
                     retry_after_s=86400)
    assert sender.decide(greedy, 0, **POLICY) == ("retry", POLICY["max_s"])
    short = Attempt(at_ms=1, status_code=503, error=None, duration_ms=1.0, retry_after_s=0)
    outcome, wait = sender.decide(short, 2, rng=random.Random(1), **POLICY)
    assert outcome == "retry" and 2 <= wait <= 4  # the backoff, not shorter


def test_the_last_attempt_a_410_or_a_refused_url_gives_up():
    assert sender.decide(attempt(500), 3, **POLICY) == ("failed", 0.0)
    assert sender.decide(attempt(410), 0, **POLICY) == ("failed", 0.0)
    assert sender.decide(attempt(None, "refused: private"), 0, **POLICY) == ("failed", 0.0)


# --- refused at submission ------------------------------------------------------------------

@pytest.mark.parametrize("url, says", [
    ("ftp://example.com/hook", "http:// or https://"),
    ("http://user:pw@example.com/hook", "no credentials"),
    ("http://", "names a host"),
    ("not a url", "no spaces"),
    ("http://no-such-host.invalid/hook", "does not resolve"),
    ("http://" + "a" * 2050 + ".com/", "characters"),
])
@pytest.mark.parametrize("endpoint", [LOCAL, DISTRIBUTED])
def test_a_bad_callback_url_is_a_400_and_nothing_is_stored(
    api, endpoint, url, says, distributed, redis_client, stored_files
):
    response = api.post(endpoint, {**SEED, "callback_url": url}, format="json")

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["error"] in ("invalid_callback_url", "invalid_request"), body
    assert says in json.dumps(body), body
    assert Job.objects.count() == 0 and stored_files() == []
    assert assert_counts_add_up(redis_client, distributed).get("accepted", 0) == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://10.1.2.3/hook",
                                 "http://192.168.1.10/", "http://[::1]/", "http://[fd00::5]/"])
def test_a_private_or_loopback_callback_is_refused_unless_the_setting_allows_it(
    api, settings, url, distributed
):
    settings.CALLBACK_ALLOW_PRIVATE = False
    refused = api.post(DISTRIBUTED, {**SEED, "callback_url": url}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_callback_url"
    assert "non-public address" in refused.json()["message"]

    settings.CALLBACK_ALLOW_PRIVATE = True
    assert api.post(DISTRIBUTED, {**SEED, "callback_url": url}, format="json").status_code == 202


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/",
                                 "http://[fe80::1]/", "http://0.0.0.0/", "http://224.0.0.1/"])
def test_link_local_metadata_and_unroutable_addresses_are_refused_even_with_the_setting(
    api, settings, url, distributed
):
    settings.CALLBACK_ALLOW_PRIVATE = True
    refused = api.post(DISTRIBUTED, {**SEED, "callback_url": url}, format="json")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_callback_url"


# --- local modes ------------------------------------------------------------------------------

def test_a_local_job_is_posted_signed_once_it_is_recorded(api, receiver):
    response = api.post(LOCAL, {**SEED, "callback_url": f"{receiver.url}/hooks/imgproc?x=1"},
                        format="json")
    assert response.status_code == 200
    job_id = response.json()["id"]
    assert response.json()["callback"]["state"] == "pending"

    send_until(lambda: callback_of(api, job_id)["state"] == "delivered")

    [request] = receiver.requests
    assert request.method == "POST" and request.path == "/hooks/imgproc?x=1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Imgproc-Event"] == "job.finished"
    assert request.headers["X-Imgproc-Attempt"] == "1"
    body = verify(api, request)
    assert body["event"] == "job.finished"
    assert body["delivery_id"] == request.headers["X-Imgproc-Delivery"]
    job = api.get(f"/api/jobs/{job_id}/").json()
    # The body is the job as its owner reads it (its callback block as it was when sent).
    sent = body["job"]
    assert sent.pop("callback")["state"] == "pending"
    job_callback = job.pop("callback")
    assert sent == job
    assert sent["status"] == "completed" and sent["results"][0]["output_url"].startswith(
        "http://testserver/api/jobs/")
    assert job_callback["state"] == "delivered" and job_callback["next_attempt_at"] is None
    [attempt] = job_callback["attempts"]
    assert attempt["status_code"] == 200 and attempt["error"] is None
    # Nothing more is due.
    assert sender.send_due() == 0 and len(receiver.requests) == 1


def test_failed_attempts_are_retried_with_backoff_and_each_is_recorded(api, receiver):
    receiver.statuses = [500, 503]
    job_id = api.post(LOCAL, {**SEED, "callback_url": receiver.url}, format="json").json()["id"]

    assert sender.send_due() == 1
    pending = callback_of(api, job_id)
    assert pending["state"] == "pending" and pending["next_attempt_at"] is not None
    assert [a["status_code"] for a in pending["attempts"]] == [500]

    send_until(lambda: callback_of(api, job_id)["state"] == "delivered")

    callback = callback_of(api, job_id)
    assert [a["status_code"] for a in callback["attempts"]] == [500, 503, 200]
    requests_ = receiver.requests
    assert [r.headers["X-Imgproc-Attempt"] for r in requests_] == ["1", "2", "3"]
    # Every attempt is the same delivery, so a receiver can tell a repeat.
    assert len({r.headers["X-Imgproc-Delivery"] for r in requests_}) == 1
    times = [time.mktime(time.strptime(a["at"][:19], "%Y-%m-%dT%H:%M:%S"))
             + float("0" + a["at"][19:23]) for a in callback["attempts"]]
    assert times == sorted(times)


def test_a_callback_is_given_up_after_the_last_attempt(api, receiver, settings):
    settings.CALLBACK_MAX_ATTEMPTS = 3
    receiver.statuses = [500] * 10
    job_id = api.post(LOCAL, {**SEED, "callback_url": receiver.url}, format="json").json()["id"]

    send_until(lambda: callback_of(api, job_id)["state"] == "failed")

    callback = callback_of(api, job_id)
    assert [a["status_code"] for a in callback["attempts"]] == [500, 500, 500]
    assert callback["next_attempt_at"] is None
    time.sleep(0.3)  # past any backoff
    assert sender.send_due() == 0 and len(receiver.requests) == 3


def test_a_receiver_answering_410_gone_gets_no_more_attempts(api, receiver):
    receiver.statuses = [410]
    job_id = api.post(LOCAL, {**SEED, "callback_url": receiver.url}, format="json").json()["id"]

    assert sender.send_due() == 1

    callback = callback_of(api, job_id)
    assert callback["state"] == "failed" and len(callback["attempts"]) == 1


def test_an_unreachable_receiver_is_a_recorded_error_and_a_retry(api):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    job_id = api.post(LOCAL, {**SEED, "callback_url": url}, format="json").json()["id"]

    assert sender.send_due() == 1

    callback = callback_of(api, job_id)
    [attempt] = callback["attempts"]
    assert attempt["status_code"] is None and "refused" in attempt["error"].lower()
    assert callback["state"] == "pending"


def test_a_host_that_turned_private_since_submission_is_refused_at_delivery(
    api, receiver, settings
):
    job_id = api.post(LOCAL, {**SEED, "callback_url": receiver.url}, format="json").json()["id"]
    settings.CALLBACK_ALLOW_PRIVATE = False  # as if its name now resolved to 127.0.0.1

    assert sender.send_due() == 1

    callback = callback_of(api, job_id)
    assert callback["state"] == "failed" and receiver.requests == []
    assert callback["attempts"][0]["error"].startswith("refused:")


def test_a_job_without_a_callback_url_has_none(api):
    job = api.post(LOCAL, SEED, format="json").json()
    assert job["callback"] is None
    assert sender.send_due() == 0


def test_a_sender_that_died_holding_a_claim_leaves_it_to_the_next_after_the_lease(
    api, receiver
):
    # Given a sender that claimed the callback and died before sending it
    job_id = api.post(LOCAL, {**SEED, "callback_url": receiver.url}, format="json").json()["id"]
    outbox = LocalOutbox()
    [lost] = outbox.claim(lease_ms=200, limit=10)
    assert lost.job_id == job_id
    # Then no other sender takes it while the lease runs
    assert sender.send_due() == 0
    # And one does once it is over
    time.sleep(0.25)
    assert sender.send_due() == 1
    assert callback_of(api, job_id)["state"] == "delivered"
    # A late record from the dead sender is kept as an attempt but moves nothing
    verdict = outbox.record(lost, {"at_ms": 1, "status_code": 500, "error": None,
                                   "duration_ms": 1.0}, "retry", retry_at_ms=1,
                            attempts_kept=20)
    assert verdict == "stale"
    assert callback_of(api, job_id)["state"] == "delivered"
    assert len(receiver.requests) == 1


def test_each_tenant_signs_with_its_own_secret_and_sees_only_its_own(
    settings, receiver
):
    settings.AUTH_REQUIRED = True
    _, secret_a = create_key("tenant A")
    _, secret_b = create_key("tenant B")
    a, b = key_client(secret_a), key_client(secret_b)
    secret_of_a = a.get("/api/callbacks/secret/").json()
    secret_of_b = b.get("/api/callbacks/secret/").json()
    assert secret_of_a["secret"] != secret_of_b["secret"]
    assert APIClient().get("/api/callbacks/secret/").status_code == 401

    job_id = a.post(LOCAL, {**SEED, "callback_url": receiver.url}, format="json").json()["id"]
    send_until(lambda: len(receiver.requests) == 1)

    [request] = receiver.requests
    assert verify(a, request)["job"]["id"] == job_id
    with pytest.raises(AssertionError):
        verify(b, request)
    assert b.get(f"/api/jobs/{job_id}/").status_code == 404


def test_the_same_request_with_another_callback_url_is_another_request(
    api, receiver, distributed
):
    first = api.post(DISTRIBUTED, {**SEED, "callback_url": f"{receiver.url}/a"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post(DISTRIBUTED, {**SEED, "callback_url": f"{receiver.url}/a"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="k1")
    other = api.post(DISTRIBUTED, {**SEED, "callback_url": f"{receiver.url}/b"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 422


# --- distributed mode -------------------------------------------------------------------------

def fail_all(queue, count: int) -> None:
    for delivery in queue.fetch(consumer="c", owner="c/1", count=count):
        queue.fail(delivery, kind="boom", message="boom", permanent=True, retry_in_s=0)


def test_a_distributed_job_calls_back_when_its_last_task_ends(
    api, receiver, distributed, redis_client, start_worker, upload, png_bytes
):
    # Given a job of three images with a callback, and no worker yet
    ids = upload(*((f"p{seed}.png", png_bytes(seed=seed)) for seed in range(3)))
    job_id = api.post(DISTRIBUTED, {**SEED, "images": ids, "callback_url": receiver.url},
                      format="json").json()["id"]
    # Then nothing is due while it runs
    assert callback_of(api, job_id)["state"] == "waiting"
    assert sender.send_due() == 0
    # When a real worker does the tasks
    start_worker("w1")
    wait_until(lambda: api.get(f"/api/jobs/{job_id}/").json()["status"] == "completed", 60,
               message="the job to complete")
    # Then the callback goes, with the finished job
    send_until(lambda: callback_of(api, job_id)["state"] == "delivered")
    [request] = receiver.requests
    body = verify(api, request)
    assert body["job"]["id"] == job_id and body["job"]["status"] == "completed"
    assert [r["status"] for r in body["job"]["results"]] == ["completed"] * 3
    assert body["delivery_id"] == request.headers["X-Imgproc-Delivery"]
    assert redis_client.zcard(distributed.keys.callbacks()) == 0


def test_a_cancelled_or_failed_distributed_job_calls_back_too(
    api, receiver, distributed, queue
):
    cancelled = api.post(DISTRIBUTED, {**SEED, "callback_url": f"{receiver.url}/c"},
                         format="json").json()["id"]
    api.post(f"/api/jobs/{cancelled}/cancel/")
    failed = api.post(DISTRIBUTED, {**SEED, "callback_url": f"{receiver.url}/f"},
                      format="json").json()["id"]
    total = api.get(f"/api/jobs/{failed}/").json()["total"]
    fail_all(queue, total + 10)

    send_until(lambda: len(receiver.requests) == 2)

    statuses = {r.path: json.loads(r.body)["job"]["status"] for r in receiver.requests}
    assert statuses == {"/c": "cancelled", "/f": "failed"}


def test_a_requeued_dead_letter_makes_the_job_call_back_again(
    api, receiver, distributed, queue, redis_client
):
    job_id = api.post(DISTRIBUTED, {**SEED, "images": [], "callback_url": receiver.url},
                      format="json").json()["id"]
    total = api.get(f"/api/jobs/{job_id}/").json()["total"]
    fail_all(queue, total + 10)
    send_until(lambda: callback_of(api, job_id)["state"] == "delivered")
    first = receiver.requests[0]

    # When its dead letters are re-queued and fail again
    assert api.post("/api/dead-letters/", {"action": "requeue", "all": True},
                    format="json").status_code == 200
    assert callback_of(api, job_id)["state"] == "delivered"  # the job is running again
    time.sleep(0.01)
    fail_all(queue, total + 10)

    # Then a second delivery goes, with its own delivery id
    send_until(lambda: len(receiver.requests) == 2)
    second = receiver.requests[1]
    assert second.headers["X-Imgproc-Delivery"] != first.headers["X-Imgproc-Delivery"]
    assert second.headers["X-Imgproc-Attempt"] == "1"
    assert len(callback_of(api, job_id)["attempts"]) == 2


def test_deleting_a_finished_job_drops_its_undelivered_callback(
    api, receiver, distributed, queue, redis_client
):
    receiver.statuses = [500] * 10
    job_id = api.post(DISTRIBUTED, {**SEED, "callback_url": receiver.url},
                      format="json").json()["id"]
    fail_all(queue, 50)
    assert sender.send_due() == 1
    assert redis_client.zscore(distributed.keys.callbacks(), job_id) is not None

    assert api.delete(f"/api/jobs/{job_id}/").status_code == 204

    assert redis_client.zscore(distributed.keys.callbacks(), job_id) is None
    time.sleep(0.3)
    assert sender.send_due() == 0


def test_while_redis_is_down_local_callbacks_still_go(api, receiver, settings):
    settings.DISTRIBUTED = settings.DISTRIBUTED.__class__(
        redis_url="redis://127.0.0.1:9/0", prefix="down")
    job_id = api.post(LOCAL, {**SEED, "callback_url": receiver.url}, format="json").json()["id"]

    assert sender.send_due() == 1

    assert callback_of(api, job_id)["state"] == "delivered"


def test_a_claim_of_a_job_that_is_gone_is_dropped(distributed, redis_client):
    redis_client.zadd(distributed.keys.callbacks(), {"job_" + "0" * 32: 0})
    assert RedisOutbox().claim(lease_ms=1000, limit=10) == []
    assert redis_client.zcard(distributed.keys.callbacks()) == 0


def test_the_scrape_counts_attempts_by_outcome_and_the_callbacks_waiting(
    api, receiver, settings, distributed
):
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict:
        text = api.get("/metrics").content.decode()
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in text_string_to_metric_families(text) for s in f.samples
                if s.name.startswith("imgproc_callback")}

    before = scrape()
    settings.CALLBACK_MAX_ATTEMPTS = 2
    receiver.statuses = [500, 500]
    api.post(LOCAL, {**SEED, "callback_url": receiver.url}, format="json")
    waiting = scrape()
    assert waiting[("imgproc_callbacks_waiting", (("kind", "local"),))] == 1
    assert waiting[("imgproc_callbacks_waiting", (("kind", "distributed"),))] == 0

    send_until(lambda: len(receiver.requests) == 2 and sender.send_due() == 0)

    after = scrape()
    for outcome, more in (("retry", 1), ("failed", 1), ("delivered", 0)):
        key = ("imgproc_callback_attempts_total", (("outcome", outcome),))
        assert after[key] - before[key] == more, outcome
    assert after[("imgproc_callbacks_waiting", (("kind", "local"),))] == 0


def test_a_job_that_cannot_be_rendered_is_a_failed_attempt_not_a_stuck_callback(
    api, receiver, distributed, queue, redis_client
):
    # Given a finished job whose record a foreign writer garbled
    job_id = api.post(DISTRIBUTED, {**SEED, "callback_url": receiver.url},
                      format="json").json()["id"]
    fail_all(queue, 50)
    redis_client.hset(distributed.keys.job(job_id), "pipeline", "{not json")

    assert sender.send_due() == 1

    # Then nothing was sent, the attempt says why, and a retry is scheduled (a bounded number)
    assert receiver.requests == []
    fields = {k.decode(): v.decode()
              for k, v in redis_client.hgetall(distributed.keys.job(job_id)).items()}
    [attempt] = json.loads(fields["callback_attempts"])
    assert attempt["error"] == "could not render the job: JSONDecodeError"
    assert fields["callback_state"] == "pending" and fields["callback_tries"] == "1"
