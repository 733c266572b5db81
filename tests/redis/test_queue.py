"""Sending, ordering, priorities, delays, uniqueness and stats on every driver."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, cast

import pytest
import redis

from tests.redis.conftest import DRIVERS, expire_leases, wait_for
from zevents.errors import ConfigError, EncodeError, QueueUnavailable
from zevents.redis import RedisQueue
from zevents.redis.message import BodyCodec

MakeQueue = Callable[..., RedisQueue]


def take_all(queue: RedisQueue, count: int = 100) -> list[Any]:
    taken = queue.consumer(lease=30.0).take(count)
    queue.consumer().ack(taken)
    return [BodyCodec().decode(t.body)["payload"] for t in taken]


@pytest.mark.parametrize("driver", ["list", "sorted-set", "stream"])
def test_messages_of_one_priority_are_taken_in_enqueue_order(
    make_queue: MakeQueue, driver: str
) -> None:
    queue = make_queue(driver=driver)
    for i in range(20):
        queue.send("job.run", i)
    assert take_all(queue) == list(range(20))


@pytest.mark.parametrize("driver", DRIVERS)
def test_higher_priority_is_taken_first_whatever_order_levels_are_given(
    make_queue: MakeQueue, driver: str
) -> None:
    queue = make_queue(driver=driver, priorities=[20, 100, 50])
    queue.send("job.run", "low", priority=20)
    queue.send("job.run", "high", priority=100)
    queue.send("job.run", "mid", priority=50)
    taken = queue.consumer(lease=30.0).take(1)
    assert [BodyCodec().decode(t.body)["payload"] for t in taken] == ["high"]
    assert taken[0].priority == 100
    assert take_all(queue) == ["mid", "low"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_send_returns_an_id_and_stats_count_ready_messages(
    make_queue: MakeQueue, driver: str
) -> None:
    queue = make_queue(driver=driver, priorities=[1, 5])
    first = queue.send("job.run", {"n": 1}, priority=5)
    second = queue.send("job.run", {"n": 2})
    assert first
    assert second
    assert first != second
    stats = queue.stats()
    assert stats["ready"] == {5: 1, 1: 1}
    assert (stats["delayed"], stats["processing"], stats["failed"]) == (0, 0, 0)


@pytest.mark.parametrize("driver", ["list", "sorted-set", "stream"])
def test_delayed_message_is_not_taken_before_it_is_due(make_queue: MakeQueue, driver: str) -> None:
    queue = make_queue(driver=driver, priorities=[0, 9])
    queue.send("job.run", "later", delay=0.3, priority=9)
    assert queue.stats()["delayed"] == 1
    assert queue.consumer(lease=30.0, serve=[9, 0]).take(10) == []
    taken = wait_for(lambda: queue.consumer(lease=30.0, serve=[9, 0]).take(10), timeout=5)
    assert [BodyCodec().decode(t.body)["payload"] for t in taken] == ["later"]
    assert taken[0].priority == 9  # a delayed message keeps its priority


def test_execute_at_in_the_past_is_due_at_once(make_queue: MakeQueue) -> None:
    queue = make_queue(driver="sorted-set")
    queue.send("job.run", "now", execute_at=datetime.now(timezone.utc) - timedelta(seconds=5))
    assert take_all(queue) == ["now"]


def test_sorted_set_puts_a_due_message_back_in_its_enqueue_place(make_queue: MakeQueue) -> None:
    queue = make_queue(driver="sorted-set")
    queue.send("job.run", "first", delay=0.2)
    queue.send("job.run", "second")

    def moved() -> bool:
        queue.consumer(lease=30.0).take(0)  # runs the mover, takes nothing
        return bool(queue.stats()["delayed"] == 0)

    wait_for(moved, timeout=5)
    assert take_all(queue) == ["first", "second"]


def test_set_driver_refuses_delays(make_queue: MakeQueue) -> None:
    queue = make_queue(driver="set")
    with pytest.raises(ConfigError, match="set driver"):
        queue.send("job.run", 1, delay=1)


def test_set_driver_queues_the_same_message_once(make_queue: MakeQueue) -> None:
    queue = make_queue(driver="set")
    first = queue.send("job.run", {"a": 1}, identifier="x")
    assert queue.send("job.run", {"a": 1}, identifier="x") == first
    assert queue.send("job.run", {"a": 1}, identifier="y") != first
    assert queue.stats()["ready"] == {0: 2}


@pytest.mark.parametrize("driver", DRIVERS)
def test_unique_send_returns_the_unfinished_message_id(make_queue: MakeQueue, driver: str) -> None:
    queue = make_queue(driver=driver)
    first = queue.send("job.run", 1, identifier="order-7", unique=True)
    assert queue.send("job.run", 2, identifier="order-7", unique=True) == first
    assert sum(queue.stats()["ready"].values()) == 1
    take_all(queue)
    assert queue.send("job.run", 3, identifier="order-7", unique=True) != first


@pytest.mark.parametrize("driver", DRIVERS)
def test_unfinished_lists_identifiers_with_messages_not_yet_finished(
    make_queue: MakeQueue, driver: str
) -> None:
    queue = make_queue(driver=driver)
    queue.send("job.run", 1, identifier="a")
    queue.send("job.run", 2, identifier="b")
    assert queue.unfinished(["a", "b", "c"]) == {"a", "b"}
    taken = queue.consumer(lease=30.0, serve=[0]).take(10)
    assert queue.unfinished(["a", "b"]) == {"a", "b"}  # processing is not finished
    queue.consumer().ack([t for t in taken if BodyCodec().decode(t.body)["identifier"] == "a"])
    assert queue.unfinished(["a", "b", "c"]) == {"b"}


@pytest.mark.parametrize("driver", DRIVERS)
def test_send_many_enqueues_every_message_in_order(make_queue: MakeQueue, driver: str) -> None:
    queue = make_queue(driver=driver)
    ids = queue.send_many([("job.run", i) for i in range(1200)])
    assert len(set(ids)) == 1200
    assert sum(queue.stats()["ready"].values()) == 1200
    payloads = take_all(queue, 1200)
    if driver == "set":
        assert sorted(payloads) == list(range(1200))
    else:
        assert payloads == list(range(1200))


@pytest.mark.parametrize("driver", ["list", "sorted-set", "stream"])
def test_send_many_of_plain_messages_keeps_priorities_order_and_bodies(
    make_queue: MakeQueue, driver: str
) -> None:
    """The batched plain path: ids in order, each message at its level, in enqueue order,
    with the body and the Redis-clock enqueued_at a single send gives it."""
    queue = make_queue(driver=driver, priorities=[1, 9])
    entries = [
        {"event": "job.run", "payload": i, "priority": 9 if i % 3 == 0 else 1} for i in range(2500)
    ]
    ids = queue.send_many(entries)
    single = queue.send("job.run", "single", priority=1)
    assert len(set(ids)) == 2500
    seqs = [int(i.split("-")[1]) for i in [*ids, single]]
    assert seqs == sorted(seqs)
    assert queue.stats()["ready"] == {9: 834, 1: 1667}
    taken = queue.consumer(lease=30.0).take(3000)
    queue.consumer().ack(taken)
    bodies = [BodyCodec().decode(t.body) for t in taken]
    high = [i for i in range(2500) if i % 3 == 0]
    low = [i for i in range(2500) if i % 3 != 0]
    assert [b["payload"] for b in bodies] == [*high, *low, "single"]
    assert [t.id for t in taken[:3]] == [ids[0], ids[3], ids[6]]
    assert all(b["event"] == "job.run" and b["enqueued_at"] > 0 for b in bodies)
    assert {t.priority for t in taken[: len(high)]} == {9}
    # The batch is stamped once, with the Redis clock read just before its scripts ran
    # (their ids carry the clock of the script, the same or a little later).
    stamped = {b["enqueued_at"] for b in bodies if b["payload"] != "single"}
    assert len(stamped) == 1
    (at,) = stamped
    assert at <= min(int(i.split("-")[0]) for i in ids) <= at + 5000


def test_a_small_send_many_is_stamped_by_its_script(make_queue: MakeQueue) -> None:
    queue = make_queue(driver="list")
    ids = queue.send_many([("job.run", i) for i in range(3)])
    taken = queue.consumer(lease=30.0).take(3)
    stamps = [BodyCodec().decode(t.body)["enqueued_at"] for t in taken]
    assert stamps == [int(i.split("-")[0]) for i in ids]


def test_send_many_on_the_set_driver_never_queues_the_same_message_twice(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue(driver="set")
    stored = queue.send("x", {"n": 1})
    ids = queue.send_many([("x", {"n": 1}), ("x", {"n": 2}), ("x", {"n": 2}), ("y", {"n": 2})])
    assert ids[0] == stored
    assert ids[1] == ids[2]
    assert len({stored, ids[1], ids[3]}) == 3
    assert queue.stats()["ready"] == {0: 3}
    assert sorted(str(p) for p in take_all(queue)) == sorted(
        str(p) for p in [{"n": 1}, {"n": 2}, {"n": 2}]
    )


def test_a_large_send_many_on_the_set_driver_stores_each_content_once(
    make_queue: MakeQueue,
) -> None:
    # Several script calls in one pipeline; each content twice, on two priority levels
    # (the ready sets alone would keep both), one of them stored before.
    queue = make_queue(driver="set", priorities=[0, 1])
    queue.send("x", {"n": 0})
    batch = [{"event": "x", "payload": {"n": i % 4500}, "priority": i // 4500} for i in range(9000)]
    ids = queue.send_many(batch)
    assert len(set(ids)) == 4500
    assert queue.stats()["ready"] == {1: 0, 0: 4500}
    consumer = queue.consumer()
    taken = consumer.take(5000)  # at most 3,000 a call (a larger count failed in Lua)
    assert len(taken) == 3000
    taken += consumer.take(5000)
    assert sorted(consumer.decode(t).payload["n"] for t in taken) == list(range(4500))


def test_send_many_takes_pairs_as_tuples_or_lists_and_refuses_a_bad_event_name(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    pairs: list[Any] = [("a", 1), ["b", 2]]  # any two-item sequence reads as a pair
    queue.send_many(pairs)
    assert sorted(take_all(queue)) == [1, 2]
    for bad in ("", 5, None):
        with pytest.raises(ConfigError, match="event must be a non-empty string"):
            queue.send_many([("a", 1), cast(Any, (bad, 2))])
    assert queue.stats()["ready"] == {0: 0}  # a refused batch stores nothing of it


def test_send_many_accepts_mappings_with_send_options(make_queue: MakeQueue) -> None:
    queue = make_queue(priorities=[0, 1])
    queue.send_many([{"event": "a", "payload": 1}, {"event": "b", "priority": 1, "delay": 60}])
    stats = queue.stats()
    assert stats["ready"] == {1: 0, 0: 1}
    assert stats["delayed"] == 1
    with pytest.raises(ConfigError, match="unknown send options"):
        queue.send_many([{"event": "a", "colour": "red"}])


def test_a_queue_is_a_bus_receiver(make_queue: MakeQueue) -> None:
    from zevents.eventbus import Bus

    queue = make_queue()
    bus = Bus()
    bus.listen("orders.*", queue)
    bus.fire("orders.created", {"id": 1})
    bus.fire("users.created", {"id": 2})
    assert take_all(queue) == [{"id": 1}]


def test_bad_options_raise_config_errors(make_queue: MakeQueue) -> None:
    queue = make_queue(priorities=[1, 2])
    with pytest.raises(ConfigError, match="priority 3"):
        queue.send("a", priority=3)
    with pytest.raises(ConfigError, match="identifier"):
        queue.send("a", unique=True)
    with pytest.raises(EncodeError):
        queue.send("a", object())
    with pytest.raises(ConfigError, match="unknown driver"):
        make_queue(driver="heap")
    with pytest.raises(ConfigError, match="serial_group"):
        queue.send("a", serial_group="")


def test_url_is_taken_from_the_environment(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEVENTS_REDIS_URL", url)
    with RedisQueue("jobs") as queue:
        assert queue.send("a", 1)


def test_send_to_an_unreachable_redis_raises_unavailable_with_masked_url() -> None:
    with (
        RedisQueue("jobs", "redis://:s3cret@127.0.0.1:1/0", socket_timeout=1) as queue,
        pytest.raises(QueueUnavailable) as info,
    ):
        queue.send("a", 1)
    text = str(info.value)
    assert "127.0.0.1:1" in text
    assert "s3cret" not in text
    assert "***" in text


def test_every_key_of_a_queue_has_the_prefix_and_hash_tag(
    make_queue: MakeQueue, raw: redis.Redis, url: str
) -> None:
    for driver in DRIVERS:
        queue = make_queue(f"tag-{driver}", driver=driver)
        queue.send("a", 1, identifier="i")
        queue.send("b", 2, delay=0 if driver == "set" else 60)
        queue.consumer(lease=30.0, serve=[0]).take(1)
    keys = [k.decode() for k in raw.keys("*")]  # type: ignore[union-attr]
    assert keys
    # Besides the queues' own keys, only the prefix's directory of queue names.
    queue_keys = [k for k in keys if k != "zevents:queues"]
    assert all(k.startswith("zevents:{tag-") for k in queue_keys), keys
    names = {n.decode() for n in raw.smembers("zevents:queues")}  # type: ignore[union-attr]
    assert names == {f"tag-{driver}" for driver in DRIVERS}


@pytest.mark.parametrize("driver", ["list", "sorted-set"])
def test_messages_reclaimed_from_a_dead_worker_keep_their_enqueue_order(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver)
    queue.send_many([("x", i) for i in range(12)])
    taken = queue.consumer(lease=30.0, serve=[0]).take(11)  # a worker takes 11 and dies
    raw.zadd(queue.keys.key("processing"), {t.id: 0 for t in taken})
    queue.consumer(lease=30.0, serve=[0]).reclaim(5)
    assert take_all(queue) == list(range(12))


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_reclaim_stops_at_its_limit_and_says_more_may_be_waiting(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    """500 expired leases a call on the list, sorted-set and set drivers (put back in
    line), 100 entries per priority on streams (leased to the caller): ``more`` says a
    call stopped at that limit, and the calls after it bring back the rest."""
    limit = 100 if driver == "stream" else 500
    count = 2 * limit + 60
    queue = make_queue(driver=driver)
    queue.send_many([("x", i) for i in range(count)])
    dead = queue.consumer(lease=30.0, serve=[0])
    expire_leases(raw, queue, dead.name, dead.take(count))  # a worker took all and died
    rescuer = make_queue(driver=driver, consumer="rescuer").consumer(lease=30.0, serve=[0])
    calls = []
    reclaimed: list[Any] = []
    for _ in range(5):
        got = rescuer.reclaim(5)
        calls.append(got.more)
        reclaimed += [BodyCodec().decode(t.body)["payload"] for t in got]
        if not got.more:
            break
    assert calls == [True, True, False]
    if driver != "stream":
        assert reclaimed == []  # back in line: the next takes get them
        reclaimed = take_all(queue, count)
    assert sorted(reclaimed) == list(range(count))
    assert rescuer.take(10) == []  # nothing left, nothing twice
