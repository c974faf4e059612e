"""distributed/metrics.py: the duration histograms the workers push with their completions,
and what a scrape reads back, against a real Redis."""

from __future__ import annotations

import time

from distributed.messages import TaskResult
from distributed.metrics import (
    DURATION_BUCKETS_S,
    cluster_metrics,
    duration_increments,
    parse_durations,
)
from tests.support.tasks import submit_tasks


def result(ms: float, *steps: tuple[str, float]) -> TaskResult:
    return TaskResult(duration_ms=ms, worker="w", attempt=1,
                      timings=tuple({"filter": f, "ms": t} for f, t in steps))


def test_an_observation_lands_in_the_first_bucket_at_or_above_it():
    inc = duration_increments([result(5.0), result(5.1), result(999_999.0)])
    i = DURATION_BUCKETS_S.index(0.005)
    assert inc[f"task|{i}"] == 1 and inc[f"task|{i + 1}"] == 1 and inc["task|inf"] == 1
    assert inc["task|sum_us"] == 5000 + 5100 + 999_999_000


def test_a_batch_sends_one_increment_per_field_and_ignores_names_that_are_no_filter():
    inc = duration_increments([result(1.0, ("blur", 0.4), ("blur", 0.4), ("Bad Name", 1.0),
                                        ("edges", True))] * 3)
    assert inc["filter:blur|0"] == 6 and inc["filter:blur|sum_us"] == 6 * 400
    assert not [k for k in inc if "Bad" in k or "edges" in k]


def test_completions_fill_the_histograms_in_their_own_round_trip(queue, redis_client,
                                                                  queue_config):
    submit_tasks(queue, 3)
    deliveries = queue.fetch(consumer="w1", owner="w1/a", count=3)
    assert len(deliveries) == 3
    # When the three are recorded in one batch, each with two steps
    recorded = queue.complete_many([(d, result(20.0, ("sharpen", 3.0), ("edges", 12.0)))
                                    for d in deliveries])
    assert recorded == [True, True, True]
    # Then the task histogram and each filter's count the three, cumulatively
    hists = parse_durations(redis_client.hgetall(queue_config.keys.durations()))
    assert set(hists) == {"task", "filter:sharpen", "filter:edges"}
    task = hists["task"]
    assert task.count == 3 and abs(task.sum_s - 0.06) < 1e-9
    assert task.buckets[-1] == (float("inf"), 3)
    assert dict(task.buckets)[0.01] == 0 and dict(task.buckets)[0.025] == 3
    assert dict(hists["filter:edges"].buckets)[0.01] == 0
    assert dict(hists["filter:edges"].buckets)[0.025] == 3
    assert dict(hists["filter:sharpen"].buckets)[0.005] == 3
    # And a fenced completion (the task is no longer this owner's) is not a completion,
    # but its run time is counted: the work was done (docs/operations.md)
    assert queue.complete_many([(deliveries[0], result(20.0))]) == [False]
    m = cluster_metrics(redis_client, queue_config)
    assert m.status["queue"]["completed"] == 3 and m.durations["task"].count == 4


def test_the_oldest_pending_task_is_found_across_tenants(queue, redis_client, queue_config):
    def head_ms(tenant: str) -> int:
        head = redis_client.lindex(queue_config.keys.tenant_queue("low", tenant), 0)
        return int(redis_client.hget(queue_config.keys.task(head.decode()), "enqueued_at"))

    # Given two tenants' low-priority tasks, globex's submitted first
    submit_tasks(queue, 2, priority="low", tenant="globex")
    time.sleep(0.3)
    submit_tasks(queue, 2, priority="low", tenant="acme")
    assert head_ms("globex") + 250 <= head_ms("acme")
    # Then the oldest pending is globex's, whatever the order of the tenants' ring
    m = cluster_metrics(redis_client, queue_config)
    assert m.oldest_pending_ms == {"high": None, "normal": None, "low": head_ms("globex")}
    # And once every task is taken, nothing is pending
    assert len(queue.fetch(consumer="w1", owner="w1/a", count=4)) == 4
    assert cluster_metrics(redis_client, queue_config).oldest_pending_ms["low"] is None
