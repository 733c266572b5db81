"""The connection a queue keeps between script calls: reused, mended when the server
closed it, never kept from a caller's client, fresh after a fork, closed on ``close``."""

from __future__ import annotations

import multiprocessing
import threading

import redis

from tests.helpers import wait_for
from tests.redis.named_clients import connections
from zevents.redis import RedisQueue


def ready(queue: RedisQueue) -> int:
    return sum(queue.stats()["ready"].values())


def test_sends_after_the_server_closed_the_kept_connection_get_through(
    named: str, raw: redis.Redis
) -> None:
    with RedisQueue("jobs", named, driver="list") as queue:
        queue.send("a", 1)  # (a second connection loaded the script)
        assert connections(raw)
        raw.client_kill_filter(_type="normal", skipme=True)  # every other connection
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
        child = context.Process(target=_send_in_child, args=(queue, sent, done))
        child.start()
        try:
            assert sent.wait(10)
            assert len(connections(raw)) == 2  # the parent's, kept, and the child's
        finally:
            done.set()
            child.join(10)
        assert child.exitcode == 0
        queue.send("parent", 2)  # the parent's connection still works
        assert ready(queue) == 3


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


def test_close_closes_the_kept_connection(named: str, raw: redis.Redis) -> None:
    queue = RedisQueue("jobs", named, driver="list")
    queue.send("a", 1)
    assert connections(raw)
    queue.close()
    assert wait_for(lambda: not connections(raw), timeout=5)
