"""Stream driver specifics: fan-out to groups, reclaims, fencing and trimming."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.redis.conftest import SERVERS, Running, expire_leases, server_binary, wait_for
from zevents.errors import ConfigError
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RedisServer
from zevents.redis.message import BodyCodec

MakeQueue = Callable[..., RedisQueue]
StartWorker = Callable[..., Running]


def test_each_group_gets_every_message_including_those_sent_before_it_existed(
    make_queue: MakeQueue, start_worker: StartWorker
) -> None:
    sender = make_queue(driver="stream", group="billing")
    sender.send("order.paid", 1)
    bus_a, bus_b = Bus(), Bus()
    seen_a: list[int] = []
    seen_b: list[int] = []
    bus_a.listen("order.*", lambda e, p: seen_a.append(p))
    bus_b.listen("order.*", lambda e, p: seen_b.append(p))
    mail = make_queue(driver="stream", group="mail")  # created after the first send
    start_worker(make_queue(driver="stream", group="billing", consumer="b1"), bus_a)
    start_worker(mail, bus_b)
    sender.send("order.paid", 2)
    wait_for(lambda: seen_a == [1, 2] and seen_b == [1, 2])


def test_consumers_of_one_group_share_the_messages(
    make_queue: MakeQueue, start_worker: StartWorker
) -> None:
    bus = Bus()
    seen: list[int] = []
    bus.listen("x", lambda e, p: seen.append(p))
    queue = make_queue(driver="stream")
    queue.send_many([("x", i) for i in range(200)])
    start_worker(make_queue(driver="stream", consumer="c1"), bus)
    start_worker(make_queue(driver="stream", consumer="c2"), bus)
    wait_for(lambda: len(seen) == 200)
    assert sorted(seen) == list(range(200))


def test_a_retry_goes_only_to_the_group_that_failed(
    make_queue: MakeQueue, start_worker: StartWorker
) -> None:
    from zevents.redis import RetryPolicy

    bus_a, bus_b = Bus(), Bus()
    seen_a: list[int] = []
    seen_b: list[int] = []

    def flaky(event: str, payload: int) -> None:
        seen_a.append(payload)
        if len(seen_a) == 1:
            raise ValueError("once")

    bus_a.listen("x", flaky)
    bus_b.listen("x", lambda e, p: seen_b.append(p))
    queue_a = make_queue(driver="stream", group="a")
    queue_b = make_queue(driver="stream", group="b")
    queue_a.send("x", 7)
    start_worker(queue_a, bus_a, retry=RetryPolicy(base=0.05))
    start_worker(queue_b, bus_b)
    wait_for(lambda: seen_a == [7, 7] and seen_b == [7])
    wait_for(lambda: queue_b.stats()["processing"] == 0 and queue_a.stats()["processing"] == 0)
    assert seen_b == [7]


def test_entries_idle_past_keep_alive_are_reclaimed_then_failed_past_max_reclaims(
    make_queue: MakeQueue,
) -> None:
    dead = make_queue(driver="stream", consumer="dead", max_reclaims=2)
    rescuer = make_queue(driver="stream", consumer="rescuer", max_reclaims=2)
    dead.send("x", "stuck", identifier="s")
    taken = dead.consumer(lease=1.0, serve=[0]).take(1)
    assert [t.attempt for t in taken] == [1]
    attempts: list[int] = []
    for _ in range(2):
        reclaimed = rescuer.consumer(lease=0, serve=[0]).reclaim(10)
        attempts.extend(t.attempt for t in reclaimed)
    assert attempts == [2, 3]
    assert rescuer.consumer(lease=0, serve=[0]).reclaim(10) == []  # third reclaim: over the limit
    failed = rescuer.failed()
    assert len(failed) == 1
    assert failed[0].payload == "stuck"
    assert failed[0].error.startswith("Reclaimed: ")
    assert failed[0].reason == "reclaim-limit"
    assert rescuer.stats()["processing"] == 0
    assert rescuer.unfinished(["s"]) == set()


def test_a_consumer_whose_entry_was_reclaimed_cannot_acknowledge_it(make_queue: MakeQueue) -> None:
    slow = make_queue(driver="stream", consumer="slow")
    fast = make_queue(driver="stream", consumer="fast")
    slow.send("x", 1)
    taken = slow.consumer(lease=1.0, serve=[0]).take(1)
    reclaimed = fast.consumer(lease=0, serve=[0]).reclaim(10)
    assert [t.id for t in reclaimed] == [t.id for t in taken]
    assert slow.consumer().ack(taken) == [taken[0].id]  # fenced
    assert slow.consumer(lease=1.0).touch(taken) == [taken[0].id]
    assert fast.stats()["processing"] == 1
    assert fast.consumer().ack(reclaimed) == []
    assert fast.stats()["processing"] == 0


def test_acknowledged_entries_are_trimmed_only_when_every_group_has_them(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    a = make_queue(driver="stream", group="a")
    b = make_queue(driver="stream", group="b")
    a.send_many([("x", i) for i in range(10)])
    key = a.keys.ready(0)
    taken_a = a.consumer(lease=30.0, serve=[0]).take(10)
    a.consumer().ack(taken_a)
    assert raw.xlen(key) == 10  # group b has read nothing yet
    taken_b = b.consumer(lease=30.0, serve=[0]).take(4)
    b.consumer().ack(taken_b[1:])  # the first entry stays pending in b
    assert raw.xlen(key) == 10
    b.consumer().ack(taken_b[:1])
    assert raw.xlen(key) == 6
    rest = b.consumer(lease=30.0, serve=[0]).take(10)
    b.consumer().ack(rest)
    assert raw.xlen(key) == 0
    assert [BodyCodec().decode(t.body)["payload"] for t in taken_b + rest] == list(range(10))


def test_stream_stats_count_ready_and_pending_for_the_group(make_queue: MakeQueue) -> None:
    queue = make_queue(driver="stream", priorities=[0, 1])
    queue.send_many([("x", i) for i in range(5)])
    queue.send("x", "later", delay=60)
    taken: list[Any] = queue.consumer(lease=30.0, serve=[1, 0]).take(2)
    stats = queue.stats()
    assert stats["ready"] == {1: 0, 0: 3}
    assert stats["processing"] == 2
    assert stats["delayed"] == 1
    queue.consumer().ack(taken)
    assert queue.stats()["processing"] == 0


def test_serial_group_runs_in_order_in_each_consumer_group_without_waiting_for_others(
    make_queue: MakeQueue, start_worker: StartWorker
) -> None:
    import threading

    fast = make_queue(driver="stream", group="fast", consumer="f")
    slow = make_queue(driver="stream", group="slow", consumer="s")
    for n in range(3):
        fast.send("x", n, serial_group="acct")
    release = threading.Event()
    seen_fast: list[int] = []
    seen_slow: list[int] = []
    bus_fast, bus_slow = Bus(), Bus()
    bus_fast.listen("x", lambda e, p: seen_fast.append(p))

    def held_up(event: str, payload: int) -> None:
        seen_slow.append(payload)
        release.wait(10)

    bus_slow.listen("x", held_up)
    start_worker(slow, bus_slow)
    start_worker(make_queue(driver="stream", group="slow", consumer="s2"), bus_slow)
    start_worker(fast, bus_fast)
    wait_for(lambda: seen_fast == [0, 1, 2])
    assert seen_slow == [0]  # the second slow worker waits for the head of the chain
    release.set()
    wait_for(lambda: seen_slow == [0, 1, 2])
    wait_for(lambda: fast.stats()["serial"] == 0 and fast.stats()["processing"] == 0)


def test_a_failed_serial_stream_message_releases_its_chain_and_retries_at_the_end(
    make_queue: MakeQueue, start_worker: StartWorker
) -> None:
    from zevents.errors import PermanentError

    queue = make_queue(driver="stream")
    seen: list[int] = []
    healed: list[bool] = []

    def receiver(event: str, payload: int) -> None:
        seen.append(payload)
        if payload == 0 and not healed:
            raise PermanentError("not yet")

    bus = Bus()
    bus.listen("x", receiver)
    for n in range(3):
        queue.send("x", n, serial_group="g")
    start_worker(queue, bus)
    wait_for(lambda: seen == [0, 1, 2] and len(queue.failed()) == 1)
    assert queue.failed()[0].group == "default"
    healed.append(True)
    queue.send("x", 3, serial_group="g", delay=60)  # the chain is held by this one now
    assert queue.retry_failed() == 1
    assert queue.stats()["serial"] == 2
    raw = queue.client
    raw.zadd(
        queue.keys.key("delayed"), dict.fromkeys(raw.zrange(queue.keys.key("delayed"), 0, -1), 0)
    )
    wait_for(lambda: seen == [0, 1, 2, 3, 0])


def test_a_stopping_worker_leaves_the_group_and_dead_consumers_are_pruned(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis
) -> None:
    queue = make_queue(driver="stream", consumer="leaver")
    key = queue.keys.ready(0)
    dead = make_queue(driver="stream", consumer="dead")
    dead.send("x", 1)
    dead.consumer(lease=1.0, serve=[0]).take(1)  # "dead" holds an entry and never comes back

    def names() -> set[str]:
        consumers: Any = raw.xinfo_consumers(key, "default")
        return {c["name"].decode() for c in consumers}

    seen: list[int] = []
    bus = Bus()
    bus.listen("x", lambda e, p: seen.append(p))
    run = start_worker(queue, bus, keep_alive=0.2)
    wait_for(lambda: seen == [1])  # reclaimed from "dead"
    wait_for(lambda: "dead" not in names())  # empty and idle past twice the lease
    run.stop()
    assert names() == set()


def test_queue_objects_get_distinct_default_consumer_names(make_queue: MakeQueue) -> None:
    assert make_queue(driver="stream").consumer != make_queue(driver="stream").consumer


def test_a_worker_recreates_its_group_when_redis_lost_it(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis
) -> None:
    queue = make_queue(driver="stream")
    seen: list[int] = []
    bus = Bus()
    bus.listen("x", lambda e, p: seen.append(p))
    start_worker(queue, bus, keep_alive=0.2)
    queue.send("x", 1)
    wait_for(lambda: seen == [1])
    raw.flushall()  # as after a restart of a Redis without persistence
    queue.send("x", 2)
    wait_for(lambda: seen == [1, 2])


def test_stream_stats_count_a_backlog_longer_than_one_page(make_queue: MakeQueue) -> None:
    from zevents.redis.protocol import stream

    queue = make_queue(driver="stream")
    queue.send_many([("x", i) for i in range(2 * stream.PAGE + 5)])
    queue.consumer().ack(queue.consumer(lease=30.0, serve=[0]).take(3))
    assert queue.stats()["ready"] == {0: 2 * stream.PAGE + 2}


def test_a_queue_that_fails_while_creating_its_group_closes_its_connection(
    url: str, raw: Any
) -> None:
    with RedisQueue("recorded-list", url) as listed:
        listed.send("x", 1)  # recorded as a list queue
    before = len(raw.client_list())
    with pytest.raises(ConfigError, match="list queue") as raised:
        RedisQueue("recorded-list", url, driver="stream", group="g")
    # closed at once, not when the half-made queue (held by the traceback) is collected
    assert raised.traceback
    # the server sees a closed connection go a moment later
    wait_for(lambda: len(raw.client_list()) == before, what="the connection closed")


def _reclaim_all(queue: RedisQueue, calls: list[int] | None = None) -> list[int]:
    """Payloads a rescuer's reclaims bring back, calling again while ``more`` says so;
    ``calls`` gets how many calls that took."""
    rescuer = queue.consumer(lease=30.0)
    found: list[int] = []
    for n in range(1, 11):
        got = rescuer.reclaim(5)
        found += [BodyCodec().decode(t.body)["payload"] for t in got]
        if not got.more:
            if calls is not None:
                calls.append(n)
            return found
    raise AssertionError(f"reclaim still says more after 10 calls ({len(found)} found)")


@pytest.mark.parametrize("server", SERVERS)
def test_a_reclaim_skips_deleted_pending_entries_on_every_priority(server: str) -> None:
    """An entry deleted while pending (XDEL, a trim) is answered as a nil by Redis 6.2's
    XAUTOCLAIM and listed apart by 7.x: the rest still come back, and the deleted one is
    no longer pending."""
    with RedisServer(server_binary(server)) as redis_server:
        raw = redis.Redis.from_url(redis_server.url)
        queue = RedisQueue("jobs", redis_server.url, driver="stream", priorities=[10, 1])
        try:
            queue.send_many([{"event": "x", "payload": i, "priority": 10} for i in range(20)])
            queue.send_many([{"event": "x", "payload": i, "priority": 1} for i in range(20, 40)])
            dead = queue.consumer(lease=30.0)
            taken = dead.take(40)
            expire_leases(raw, queue, dead.name, taken)
            deleted = [t for t in taken if BodyCodec().decode(t.body)["payload"] in (3, 25)]
            for t in deleted:
                raw.xdel(queue.keys.ready(t.priority), t.token)
            assert sorted(_reclaim_all(queue)) == [i for i in range(40) if i not in (3, 25)]
            pending = sum(
                int(raw.xpending(queue.keys.ready(p), queue.group)["pending"]) for p in (10, 1)
            )
            assert pending == 38
        finally:
            queue.close()
            raw.close()


@pytest.mark.parametrize("server", SERVERS)
def test_a_reclaim_goes_on_past_the_live_entries_that_come_first(server: str) -> None:
    """XAUTOCLAIM looks at COUNT x 10 pending entries a call at most: behind 1,100
    entries of a live worker, a dead worker's entries are reached by the next calls,
    which go on from the cursor."""
    with RedisServer(server_binary(server)) as redis_server:
        raw = redis.Redis.from_url(redis_server.url)
        queue = RedisQueue("jobs", redis_server.url, driver="stream")
        try:
            queue.send_many([("x", i) for i in range(1150)])
            live = make_consumer(queue, "live")
            assert len(live.take(1100)) == 1100  # leased now: not idle
            dead = make_consumer(queue, "dead")
            expire_leases(raw, queue, "dead", dead.take(50))
            assert sorted(_reclaim_all(queue)) == list(range(1100, 1150))
        finally:
            queue.close()
            raw.close()


def make_consumer(queue: RedisQueue, name: str) -> Any:
    return queue.consumer(lease=30.0, name=name)


@pytest.mark.parametrize("server", SERVERS)
def test_a_reclaim_pass_ends_once_every_priority_was_scanned(server: str) -> None:
    """Pending lists of different lengths (1,500 and 2,500 live entries: 2 and 3 calls'
    worth) end one pass together: a level done early waits for the others, so ``more``
    clears after the longest, instead of whenever both happen to finish at once."""
    with RedisServer(server_binary(server)) as redis_server:
        queue = RedisQueue("jobs", redis_server.url, driver="stream", priorities=[10, 1])
        try:
            queue.send_many([{"event": "x", "payload": i, "priority": 10} for i in range(1500)])
            queue.send_many([{"event": "x", "payload": i, "priority": 1} for i in range(2500)])
            live = make_consumer(queue, "live")
            assert len(live.take(3000)) + len(live.take(1000)) == 4000  # leased: not idle
            calls: list[int] = []
            assert _reclaim_all(queue, calls) == []
            assert calls[0] <= 3
            assert _reclaim_all(queue, calls) == []  # the next pass starts again, and ends
            assert calls[1] <= 3
        finally:
            queue.close()
