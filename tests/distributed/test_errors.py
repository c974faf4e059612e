"""Redis errors become domain errors at the border, raised from the Redis error."""

from __future__ import annotations

import pytest
import redis

from distributed.embedded import free_port
from distributed.errors import (
    GroupMissing,
    ProtocolError,
    RedisUnavailable,
    translate_redis_errors,
)
from distributed.queue import Queue


def test_a_command_on_a_key_of_another_type_is_a_protocol_error(redis_client):
    redis_client.rpush("t:list", "x")
    with pytest.raises(ProtocolError) as info, translate_redis_errors():
        redis_client.hgetall("t:list")
    assert isinstance(info.value.__cause__, redis.ResponseError)
    assert "WRONGTYPE" in str(info.value)


def test_fetching_without_a_consumer_group_raises_group_missing(
    queue, redis_client, queue_config
):
    redis_client.flushall()  # the server lost its streams and groups
    redis_client.xadd(queue_config.keys.queue("normal"), {"task": "x"})
    with pytest.raises(GroupMissing):
        queue.fetch(consumer="w1", owner="w1/a", count=1)
    queue.ensure_groups()
    # the entry has no task record: it is dropped, not delivered
    assert queue.fetch(consumer="w1", owner="w1/a", count=1) == []


def test_an_unreachable_server_is_redis_unavailable(queue_config):
    client = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    with pytest.raises(RedisUnavailable) as info:
        Queue(client, queue_config).ping()
    assert isinstance(info.value.__cause__, redis.ConnectionError)
