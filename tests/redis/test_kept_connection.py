"""The connection a queue keeps between script calls: reused, mended when the server
closed it, never kept from a caller's client, fresh after a fork, closed on ``close``."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
import redis

from tests.helpers import wait_for
from tests.redis.named_clients import connections, kill_named
from zevents.errors import QueueError
from zevents.redis import RedisQueue


def ready(queue: RedisQueue) -> int:
    return sum(queue.stats()["ready"].values())


def in_use(queue: RedisQueue) -> int:
    """Connections the queue's pool counts as handed out (kept ones among them): what a
    connection dropped without being given back leaks (redis-py's own accounting)."""
    return len(queue.client.connection_pool._in_use_connections)


def test_sends_after_the_server_closed_the_kept_connection_get_through(
    named: str, raw: redis.Redis
) -> None:
    with RedisQueue("jobs", named, driver="list") as queue:
        queue.send("a", 1)  # (a second connection loaded the script)
        assert connections(raw)
        kill_named(raw)
        assert wait_for(lambda: not connections(raw), timeout=5)
        queue.send("b", 2)
        queue.send("c", 3)
        assert ready(queue) == 3


def test_a_callers_client_gets_its_connection_back_after_each_call(url: str) -> None:
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=1, timeout=1)
    client = redis.Redis(connection_pool=pool)
    try:
        with RedisQueue("jobs", client=client, driver="list") as queue:
            queue.send("a", 1)
            assert client.ping()  # its one connection is free: none kept by the queue
            queue.send("b", 2)
            assert ready(queue) == 2
    finally:
        client.close()
        pool.disconnect()


def _send_in_child(queue: RedisQueue, sent: threading.Event, done: threading.Event) -> None:
    queue.send("child", 1)
    sent.set()
    done.wait(10)


def test_a_forked_child_sends_on_its_own_connection(named: str, raw: redis.Redis) -> None:
    context = multiprocessing.get_context("fork")
    sent, done = context.Event(), context.Event()
    with RedisQueue("jobs", named, driver="list") as queue:
        queue.send("parent", 0)
        queue.send("parent", 1)  # (the script is loaded now: no call loads it below)
        before = len(connections(raw))
        child = context.Process(target=_send_in_child, args=(queue, sent, done))
        child.start()
        try:
            assert sent.wait(10)
            assert len(connections(raw)) == before + 1  # the parent's kept, the child's
        finally:
            done.set()
            child.join(10)
        assert child.exitcode == 0
        queue.send("parent", 2)  # the parent's connection still works
        assert ready(queue) == 4


def test_threads_sharing_a_queue_lose_nothing(url: str) -> None:
    with RedisQueue("jobs", url, driver="list") as queue:
        errors: list[BaseException] = []

        def send(n: int) -> None:
            try:
                for i in range(200):
                    queue.send("t", {"n": n, "i": i})
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == []
        assert ready(queue) == 1600


def _account_in_child(queue: RedisQueue, counts: Any) -> None:
    queue.send("child", 1)  # kept in the child
    queue.send("child", 2)  # taken back, and kept again
    queue.runner.close()
    counts.put(in_use(queue))


def test_a_child_forked_before_any_call_gives_back_what_it_kept(url: str) -> None:
    """Nothing was kept when the child was forked: what it keeps is its own, given back
    to its pool, not dropped as the parent's."""
    context = multiprocessing.get_context("fork")
    counts = context.SimpleQueue()
    with RedisQueue("jobs", url, driver="list") as queue:
        child = context.Process(target=_account_in_child, args=(queue, counts))
        child.start()
        child.join(10)
        assert child.exitcode == 0
        assert counts.get() == 0
        assert ready(queue) == 2


def test_close_gives_the_kept_connection_back_and_closes_it(named: str, raw: redis.Redis) -> None:
    queue = RedisQueue("jobs", named, driver="list")
    queue.send("a", 1)
    assert in_use(queue) == 1  # the kept one
    assert connections(raw)
    queue.close()
    assert in_use(queue) == 0
    assert wait_for(lambda: not connections(raw), timeout=5)


def test_a_pool_of_few_connections_keeps_none_and_serves_every_call(url: str) -> None:
    """A quarter of max_connections=3 is none: each call gives its connection back, so
    one pooled connection at a time is enough."""
    with RedisQueue("jobs", f"{url}?max_connections=3", driver="list") as queue:
        for n in range(5):
            queue.send("a", n)
            assert in_use(queue) == 0
        assert queue.send_many([("b", n) for n in range(3)])
        assert ready(queue) == 8


def test_a_connection_left_in_the_middle_of_a_reply_is_not_used_again(
    named: str, raw: redis.Redis
) -> None:
    """A call cut short (here: its socket timed out before the reply) leaves the
    connection out of the kept ones: the next call does not read the old reply."""
    with RedisQueue("jobs", f"{named}&socket_timeout=0.2", driver="list") as queue:
        queue.send("a", 1)
        raw.client_pause(600)  # the next reply comes after the socket timeout
        with pytest.raises(QueueError):
            queue.send("b", 2)
        assert in_use(queue) == 0  # given back, not kept
        assert raw.ping()  # (answered once the pause is over)
        sent = queue.send("c", 3)
        consumer = queue.consumer(lease=30.0)
        taken = [consumer.decode(t) for t in consumer.take(10)]
        # b was cut off: dropped with its connection, or run once the pause was over
        assert sorted(m.event for m in taken) in (["a", "c"], ["a", "b", "c"])
        assert [m.id for m in taken if m.event == "c"] == [sent]  # c's own reply
