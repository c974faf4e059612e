"""Each tenant's storage usage in Redis ({p}:usage): reserved against a quota atomically,
charged whatever the quota, released never below zero."""

from __future__ import annotations

import threading

import pytest
import redis

from distributed.config import QueueConfig
from distributed.queue import Queue
from distributed.usage import Reservation, StorageUsage


@pytest.fixture
def usage(queue: Queue, redis_client: redis.Redis, queue_config: QueueConfig) -> StorageUsage:
    return StorageUsage(redis_client, queue_config, queue.scripts)


def test_a_reservation_that_fits_is_added_and_one_that_does_not_changes_nothing(
    usage: StorageUsage, redis_client: redis.Redis, queue_config: QueueConfig
):
    assert usage.reserve("t1", 600, quota_bytes=1000) == Reservation(True, 600)
    assert usage.reserve("t1", 400, quota_bytes=1000) == Reservation(True, 1000)  # exactly
    assert usage.reserve("t1", 1, quota_bytes=1000) == Reservation(False, 1000)
    assert usage.used("t1") == 1000 and usage.used("t2") == 0
    assert redis_client.hgetall(queue_config.keys.usage()) == {b"t1": b"1000"}


def test_a_charge_passes_the_quota_and_a_release_never_goes_below_zero(
    usage: StorageUsage, redis_client: redis.Redis, queue_config: QueueConfig
):
    usage.reserve("t1", 900, quota_bytes=1000)
    assert usage.charge("t1", 500) == 1400  # outputs written: counted, never refused
    assert usage.reserve("t1", 0, quota_bytes=1000).reserved is False  # over: nothing fits
    assert usage.release("t1", 1000) == 400
    assert usage.release("t1", 10_000) == 0  # bytes never counted cannot take it negative
    assert usage.used("t1") == 0
    assert not redis_client.hexists(queue_config.keys.usage(), "t1")  # 0 is removed
    assert usage.release("t3", 5) == 0 and usage.used("t3") == 0


def test_large_figures_stay_exact(usage: StorageUsage):
    big = 3 * 10**15 + 7  # past what Lua's default number format prints exactly
    assert usage.charge("t1", big) == big
    assert usage.release("t1", 7) == 3 * 10**15


def test_no_quota_means_every_reservation_is_added(usage: StorageUsage):
    assert usage.reserve("t1", 10**12, quota_bytes=0) == Reservation(True, 10**12)


def test_concurrent_reservations_never_pass_the_quota(usage: StorageUsage):
    # Given 8 threads each reserving 100 bytes 20 times against a 5,000-byte quota
    granted: list[int] = []
    lock = threading.Lock()

    def reserve_many() -> None:
        for _ in range(20):
            if usage.reserve("t1", 100, quota_bytes=5000).reserved:
                with lock:
                    granted.append(100)

    threads = [threading.Thread(target=reserve_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    # Then exactly the quota was granted, and the counter agrees
    assert sum(granted) == 5000 == usage.used("t1")


@pytest.mark.parametrize("tenant, nbytes", [("", 1), ("t1", -1), ("t1", 1.5), ("t1", True)])
def test_bad_arguments_are_refused_before_redis(usage: StorageUsage, tenant, nbytes):
    with pytest.raises(ValueError):
        usage.reserve(tenant, nbytes, quota_bytes=10)
    with pytest.raises(ValueError):
        usage.release(tenant, nbytes)
