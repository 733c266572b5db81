"""The connections an asyncio queue keeps between script calls: mended when the server
closed them, never kept from a caller's client, closed on ``aclose``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio

from tests.aio_redis.conftest import run
from tests.helpers import wait_for
from zevents.aio.redis import RedisQueue

NAME = "kept-aio-conn"


@pytest.fixture
def named(url: str) -> str:
    """The suite's URL with a client name, to find the queue's connections."""
    return f"{url}?client_name={NAME}"


@pytest.fixture
def admin(url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url)
    yield client
    client.close()


def connections(admin: redis.Redis) -> list[dict[str, str]]:
    return [c for c in admin.client_list() if c.get("name") == NAME]


async def ready(queue: RedisQueue) -> int:
    return sum((await queue.stats())["ready"].values())


def test_sends_after_the_server_closed_the_kept_connections_get_through(
    named: str, admin: redis.Redis
) -> None:
    async def scenario() -> None:
        async with RedisQueue("jobs", named, driver="list") as queue:
            await asyncio.gather(*(queue.send("a", i) for i in range(50)))
            assert connections(admin)
            admin.client_kill_filter(_type="normal", skipme=True)
            assert wait_for(lambda: not connections(admin), timeout=5)
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


def test_aclose_closes_the_kept_connections(named: str, admin: redis.Redis) -> None:
    async def scenario() -> None:
        queue = RedisQueue("jobs", named, driver="list")
        await asyncio.gather(*(queue.send("a", i) for i in range(20)))
        assert connections(admin)
        await queue.aclose()

    run(scenario())
    assert wait_for(lambda: not connections(admin), timeout=5)
