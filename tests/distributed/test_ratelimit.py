"""distributed/ratelimit.py: the GCRA, in Python (a fake clock, so counts are exact) and in
Redis (ratelimit.lua on a real server, timed by Redis's clock: limits whose interval dwarfs
the test's own time, or a TAT written relative to the server's TIME)."""

from __future__ import annotations

import random
import threading
import time

import pytest
import redis

from distributed.errors import RedisUnavailable
from distributed.keys import Keys
from distributed.ratelimit import (
    Decision,
    Limit,
    LocalRateLimiter,
    RedisRateLimiter,
    default_burst,
    gcra,
    parse_rate,
)
from tests.support.workers import wait_until

US = 1_000_000


# --- the rate and its default burst --------------------------------------------------------


@pytest.mark.parametrize(("text", "parsed"), [
    ("1200/min", (1200, 60)), ("10/s", (10, 1)), ("5/second", (5, 1)), ("7/minutes", (7, 60)),
    ("100/h", (100, 3600)), ("100/hour", (100, 3600)), ("1000/day", (1000, 86400)),
    (" 3 / M ", (3, 60)),
])
def test_a_rate_is_a_count_per_period(text: str, parsed: tuple[int, int]) -> None:
    assert parse_rate(text) == parsed


@pytest.mark.parametrize("text", ["", "fast", "0/min", "-1/min", "10/week", "10", "1.5/s",
                                  "10/mango"])
def test_a_malformed_rate_is_refused_saying_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected <count>/<period>"):
        parse_rate(text)


def test_the_default_burst_is_a_tenth_of_the_count_per_minute_rounded_down() -> None:
    assert default_burst("1200/min") == 120
    assert default_burst("10/s") == 60
    assert default_burst("3/min") == 0
    assert default_burst("6000/h") == 10
    assert default_burst("") == 0


def test_the_interval_is_rounded_up_so_the_limit_is_never_faster_than_the_rate() -> None:
    assert Limit(1200, 60).interval_us == 50_000
    assert Limit(7, 60).interval_us == 8_571_429  # 8,571,428.57...
    assert Limit(7, 60, burst=3).tolerance_us == 3 * 8_571_429


# --- the algorithm, on a fake clock ------------------------------------------------------------


def test_from_idle_burst_plus_one_are_admitted_at_once_then_one_per_interval() -> None:
    limit = Limit(600, 60, burst=10)  # one per 100 ms
    now = 1_000 * US
    limiter = LocalRateLimiter(clock=lambda: now)
    decisions = [limiter.hit("k", limit) for _ in range(12)]
    assert [d.allowed for d in decisions] == [True] * 11 + [False]
    assert [d.remaining for d in decisions] == [*range(10, -1, -1), 0]
    # Refused: the next one is due in one interval; the bucket is full again in eleven
    assert decisions[-1] == Decision(False, 0, 100, 1100)
    now += 99_999
    assert not limiter.hit("k", limit).allowed
    now += 1
    assert limiter.hit("k", limit) == Decision(True, 0, 0, 1100)
    assert not limiter.hit("k", limit).allowed


def test_a_burst_of_zero_spaces_requests_one_interval_apart() -> None:
    limit = Limit(3, 60, burst=0)
    decision, tat = gcra(0, 5 * US, limit)
    assert decision == Decision(True, 0, 0, 20_000) and tat == 25 * US
    assert gcra(tat, 5 * US + 1, limit)[0] == Decision(False, 0, 20_000, 20_000)
    assert gcra(tat, 25 * US, limit)[0].allowed


def test_over_a_steady_overload_exactly_rate_times_time_plus_burst_plus_one_get_in() -> None:
    # Given a request every millisecond for 10 s against 600/min with a burst of 10
    limit = Limit(600, 60, burst=10)
    clock = {"now": 0}
    limiter = LocalRateLimiter(clock=lambda: clock["now"])
    admitted = 0
    for ms in range(1, 10_001):
        clock["now"] = ms * 1000
        admitted += limiter.hit("k", limit).allowed
    # Then 11 at once, and one per 100 ms over the next 9.999 s
    assert admitted == 11 + 99


def test_no_window_ever_holds_more_than_rate_times_its_length_plus_burst_plus_one() -> None:
    # Given random arrivals, in bursts and gaps, against 20/s with a burst of 4
    limit = Limit(20, 1, burst=4)
    rng = random.Random(19)
    now, admitted = 0, []
    for _ in range(3000):
        now += int(rng.expovariate(1 / 30_000)) if rng.random() < 0.9 else rng.randint(0, 2 * US)
        tat = admitted[-1][1] if admitted else 0
        decision, new_tat = gcra(tat, now, limit)
        if decision.allowed:
            admitted.append((now, new_tat))
    times = [t for t, _ in admitted]
    # Then every window [times[i], times[j]] holds at most 20 * length + 4 + 1 admissions
    # (windows of up to 200 admissions: longer ones are further from the bound)
    worst = max(j - i + 1 - (20 * (times[j] - times[i]) / US)
                for i in range(len(times)) for j in range(i, min(len(times), i + 200)))
    assert worst <= 5, worst
    # And the bound is reached (within the rounding of arrival times): it is the real one
    assert worst > 4.99 and len(times) > 2000, (worst, len(times))


def test_the_local_limiter_forgets_identities_whose_bucket_is_full_again() -> None:
    clock = {"now": 1 * US}
    limiter = LocalRateLimiter(clock=lambda: clock["now"], sweep_s=1.0)
    for ident in ("a", "b", "c"):
        limiter.hit(ident, Limit(1, 1))
    assert len(limiter) == 3
    clock["now"] += 2 * US  # past their TATs and the next sweep
    limiter.hit("d", Limit(1, 1))
    assert len(limiter) == 1


def test_the_local_limiter_is_exact_under_threads() -> None:
    # Given 16 threads hitting one identity on a frozen clock
    limiter = LocalRateLimiter(clock=lambda: 7 * US)
    limit = Limit(1, 60, burst=49)
    results: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(200):
            allowed = limiter.hit("k", limit).allowed
            with lock:
                results.append(allowed)

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly the burst + 1 got in
    assert len(results) == 3200 and results.count(True) == 50


# --- in Redis --------------------------------------------------------------------------------


@pytest.fixture
def limiter(redis_client: redis.Redis) -> RedisRateLimiter:
    return RedisRateLimiter(redis_client, Keys("t"))


def server_now_us(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * US + int(micros)


def test_redis_admits_burst_plus_one_then_refuses_with_the_wait_until_the_next(
    limiter: RedisRateLimiter, redis_client: redis.Redis
) -> None:
    # Given 1/min with a burst of 4: the test's own milliseconds are negligible against 60 s
    limit = Limit(1, 60, burst=4)
    decisions = [limiter.hit("key_a", limit) for _ in range(7)]
    # Then exactly five get in, counting down what remains
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    # And a refusal waits for the next interval (minus the time the calls took)
    refused = decisions[-1]
    assert 55_000 <= refused.retry_after_ms <= 60_000, refused
    assert 295_000 <= refused.reset_after_ms <= 300_000, refused
    # And another identity has its own limit
    assert limiter.hit("key_b", limit) == Decision(True, 4, 0, 60_000)


def test_redis_keeps_the_tat_in_server_microseconds_and_expires_the_key_when_idle(
    limiter: RedisRateLimiter, redis_client: redis.Redis
) -> None:
    key = Keys("t").rate_limit("key_a")
    before = server_now_us(redis_client)
    decision = limiter.hit("key_a", Limit(1, 60, burst=2))
    after = server_now_us(redis_client)
    # The TAT is the server's now plus one interval, to the microsecond
    tat = int(redis_client.get(key))
    assert before + 60 * US <= tat <= after + 60 * US
    # And the key lives exactly until then (the bucket is full again: nothing to remember)
    assert decision.reset_after_ms == 60_000
    assert 59_000 <= redis_client.pttl(key) <= 60_000
    # And a quick limit's key is gone once its interval has passed
    limiter.hit("key_quick", Limit(1, 1))
    assert redis_client.exists(Keys("t").rate_limit("key_quick"))
    wait_until(lambda: not redis_client.exists(Keys("t").rate_limit("key_quick")), 5,
               message="the idle key to expire")


def test_redis_decides_from_the_tat_relative_to_its_own_clock(
    limiter: RedisRateLimiter, redis_client: redis.Redis
) -> None:
    # Given a TAT written 30 s beyond the server's now, with a tolerance of 20 s (2 x 10 s)
    limit = Limit(6, 60, burst=2)
    key = Keys("t").rate_limit("key_a")
    redis_client.set(key, server_now_us(redis_client) + 30 * US)
    # Then the next request is 10 s away, whatever the test machine's clock says
    refused = limiter.hit("key_a", limit)
    assert not refused.allowed and 9_900 <= refused.retry_after_ms <= 10_000, refused
    assert 29_900 <= refused.reset_after_ms <= 30_000
    # And a TAT in the past is as good as none: the full burst
    redis_client.set(key, server_now_us(redis_client) - 3600 * US)
    assert limiter.hit("key_a", limit) == Decision(True, 2, 0, 10_000)


def test_redis_admits_again_once_the_wait_has_passed(limiter: RedisRateLimiter) -> None:
    limit = Limit(2, 1, burst=0)  # one per 500 ms
    assert limiter.hit("key_a", limit).allowed
    refused = limiter.hit("key_a", limit)
    assert not refused.allowed and 0 < refused.retry_after_ms <= 500
    time.sleep(refused.retry_after_ms / 1000 + 0.01)
    assert limiter.hit("key_a", limit).allowed


def test_redis_is_exact_under_threads_and_separate_clients(redis_server) -> None:
    # Given 4 clients (as 4 API processes would have), 5 threads each, on one identity
    clients = [redis.Redis.from_url(redis_server.url) for _ in range(4)]
    limiters = [RedisRateLimiter(c, Keys("t")) for c in clients]
    limit = Limit(50, 1, burst=5)  # one per 20 ms
    admitted, lock = [0], threading.Lock()
    start = threading.Barrier(21)

    def hammer(limiter: RedisRateLimiter) -> None:
        start.wait()
        while time.monotonic() < deadline:
            if limiter.hit("key_race", limit).allowed:
                with lock:
                    admitted[0] += 1

    try:
        clients[0].delete(Keys("t").rate_limit("key_race"))
        threads = [threading.Thread(target=hammer, args=(limiters[i % 4],)) for i in range(20)]
        for t in threads:
            t.start()
        began = time.monotonic()
        deadline = began + 2.0
        start.wait()
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - began
    finally:
        for c in clients:
            c.close()
    # Then no more than the GCRA's bound over the window (which contains every decision)
    assert admitted[0] <= int(50 * elapsed + 5) + 1, (admitted[0], elapsed)
    # And nearly that many: demand was far above the rate all along
    assert admitted[0] >= 0.8 * (50 * 2.0 + 5), (admitted[0], elapsed)


def test_an_identity_that_is_not_a_plain_id_or_address_is_hashed_into_the_key() -> None:
    keys = Keys("t")
    assert keys.rate_limit("key_0123abcd") == "t:rl:key_0123abcd"
    assert keys.rate_limit("::1") == "t:rl:::1"
    odd = keys.rate_limit("10.0.0.1, 10.0.0.2")
    assert odd.startswith("t:rl:h") and len(odd) == len("t:rl:h") + 64
    assert keys.rate_limit("x" * 65) != keys.rate_limit("x" * 66)


def test_redis_down_is_redis_unavailable() -> None:
    from distributed.config import QueueConfig
    from distributed.embedded import free_port

    dead = RedisRateLimiter.connect(QueueConfig(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    try:
        with pytest.raises(RedisUnavailable):
            dead.hit("key_a", Limit(1, 1))
    finally:
        dead.close()
