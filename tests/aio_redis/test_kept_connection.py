"""The connections an asyncio queue keeps between script calls: mended when the server
closed them, never kept from a caller's client, closed on ``aclose``."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import redis
import redis.asyncio

from tests.aio_redis.conftest import run
from tests.helpers import command_calls, wait_for
from tests.redis.named_clients import connections, kill_named
from zevents.aio.redis import RedisQueue
from zevents.errors import QueueUnavailable
from zevents.redis import RedisServer


async def ready(queue: RedisQueue) -> int:
    return sum((await queue.stats())["ready"].values())


def test_sends_after_the_server_closed_the_kept_connections_get_through(
    named: str, raw: redis.Redis
) -> None:
    async def scenario() -> None:
        async with RedisQueue("jobs", named, driver="list") as queue:
            await asyncio.gather(*(queue.send("a", i) for i in range(50)))
            assert connections(raw)
            kill_named(raw)  # the queue's own, no one else's
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


def in_use(queue: RedisQueue) -> int:
    """Connections the queue's pool counts as handed out, kept ones among them (redis-py's
    own accounting): what a connection dropped without being given back leaks."""
    return len(queue.runner.client.connection_pool._in_use_connections)


def test_aclose_gives_the_kept_connections_back_and_closes_them(
    named: str, raw: redis.Redis
) -> None:
    async def scenario() -> None:
        queue = RedisQueue("jobs", named, driver="list")
        await asyncio.gather(*(queue.send("a", i) for i in range(20)))
        assert in_use(queue) > 0  # the kept ones
        assert connections(raw)
        await queue.aclose()
        assert in_use(queue) == 0

    run(scenario())
    assert wait_for(lambda: not connections(raw), timeout=5)


def test_a_pool_of_few_connections_keeps_none_and_serves_every_call(url: str) -> None:
    """A quarter of max_connections=3 is none: every connection goes back to the pool,
    and 30 sends at once share its three."""

    async def scenario() -> None:
        async with RedisQueue("jobs", f"{url}?max_connections=3", driver="list") as queue:
            await asyncio.gather(*(queue.send("a", i) for i in range(30)))
            assert in_use(queue) == 0
            await queue.send_many([("b", i) for i in range(3)])
            assert in_use(queue) == 0
            assert await ready(queue) == 33

    run(scenario())


def test_a_write_the_server_does_not_take_in_time_is_unavailable_and_mends() -> None:
    """The server stopped (SIGSTOP) while a send too large for the socket buffers is
    written: the write ends at the socket timeout as ``QueueUnavailable``, its
    connection is closed and given back, and once the server runs again the next send
    gets through on a fresh one."""
    with RedisServer() as server:
        pid = server.pid
        assert pid is not None

        async def scenario() -> None:
            async with RedisQueue("jobs", server.url, driver="list", socket_timeout=0.5) as queue:
                await queue.send("a", 1)  # a kept connection
                os.kill(pid, signal.SIGSTOP)
                try:
                    with pytest.raises(QueueUnavailable, match="writing"):
                        await queue.send("big", "x" * 32_000_000)
                    assert in_use(queue) == 0
                finally:
                    os.kill(pid, signal.SIGCONT)
                await queue.send("b", 2)
                assert await ready(queue) == 2  # the cut-off send never arrived whole

        run(scenario())


def test_a_kept_connection_gets_its_health_check_when_one_is_due(
    url: str, raw: redis.Redis
) -> None:
    """A connection idle past ``health_check_interval`` is pinged before the next call
    is written on it (a dead one is then connected afresh, not written to blind)."""

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver="list") as queue:
            await queue.send("a", 1)
            (kept,) = queue.runner._kept
            before = command_calls(raw, "ping")
            await queue.send("b", 2)  # not due: no ping
            assert command_calls(raw, "ping") == before
            kept.next_health_check = -1  # as if idle for longer than the interval
            await queue.send("c", 3)
            assert command_calls(raw, "ping") == before + 1

    run(scenario())
