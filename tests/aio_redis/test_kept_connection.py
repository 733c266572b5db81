"""The connections an asyncio queue keeps between script calls: mended when the server
closed them, never kept from a caller's client, closed on ``aclose``."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio

from tests.aio_redis.conftest import run
from tests.helpers import wait_for
from tests.redis.named_clients import connections
from zevents.aio.redis import RedisQueue


async def ready(queue: RedisQueue) -> int:
    return sum((await queue.stats())["ready"].values())


def test_sends_after_the_server_closed_the_kept_connections_get_through(
    named: str, raw: redis.Redis
) -> None:
    async def scenario() -> None:
        async with RedisQueue("jobs", named, driver="list") as queue:
            await asyncio.gather(*(queue.send("a", i) for i in range(50)))
            assert connections(raw)
            raw.client_kill_filter(_type="normal", skipme=True)
            assert wait_for(lambda: not connections(raw), timeout=5)
            await queue.send("b", 1)
            await asyncio.gather(*(queue.send("c", i) for i in range(50)))
            assert await ready(queue) == 101

    run(scenario())


def test_a_callers_client_gets_its_connection_back_after_each_call(url: str) -> None:
    async def scenario() -> None:
        pool = redis.asyncio.BlockingConnectionPool.from_url(url, max_connections=1, timeout=1)
        client = redis.asyncio.Redis.from_pool(pool)
        try:
            async with RedisQueue("jobs", client=client, driver="list") as queue:
                await queue.send("a", 1)
                assert await client.ping()  # its one connection is free: none kept
                await queue.send("b", 2)
                assert await ready(queue) == 2
        finally:
            await client.aclose()

    run(scenario())


def test_aclose_closes_the_kept_connections(named: str, raw: redis.Redis) -> None:
    async def scenario() -> None:
        queue = RedisQueue("jobs", named, driver="list")
        await asyncio.gather(*(queue.send("a", i) for i in range(20)))
        assert connections(raw)
        await queue.aclose()

    run(scenario())
    assert wait_for(lambda: not connections(raw), timeout=5)
