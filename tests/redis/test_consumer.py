"""The consumer side of a queue, the worker registry, serializers, and the sans-I/O
protocol under them."""

from __future__ import annotations

import decimal
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.redis.conftest import DRIVERS, Running, wait_for
from zevents.errors import ConfigError, QueueUnavailable
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RedisServer, Worker, WorkerRegistry
from zevents.redis.message import BodyCodec, failure_record
from zevents.redis.protocol import Call, CoreDriver, Reader
from zevents.redis.protocol.steps import Plan

MakeQueue = Callable[..., RedisQueue]
StartWorker = Callable[..., Running]


@pytest.mark.parametrize("driver", DRIVERS)
def test_take_decode_ack_through_a_consumer(make_queue: MakeQueue, driver: str) -> None:
    queue = make_queue(driver=driver)
    queue.send("order.paid", {"id": 1}, identifier="order-1")
    consumer = queue.consumer(lease=30.0)
    (taken,) = consumer.take(10)
    message = consumer.decode(taken)
    assert (message.event, message.payload, message.attempt) == ("order.paid", {"id": 1}, 1)
    assert message.queue == queue.name
    assert queue.unfinished(["order-1"]) == {"order-1"}
    assert consumer.ack([message]) == []
    assert queue.unfinished(["order-1"]) == set()
    stats = queue.stats()
    assert (stats["processing"], sum(stats["ready"].values())) == (0, 0)


@pytest.mark.parametrize("driver", ["list", "sorted-set", "stream"])
def test_retry_fail_and_release_through_a_consumer(make_queue: MakeQueue, driver: str) -> None:
    queue = make_queue(driver=driver)
    queue.send_many([("a", 1), ("b", 2), ("c", 3)])
    consumer = queue.consumer(lease=30.0)
    first, second, third = consumer.take(3)
    assert consumer.retry(first, 0, count_attempt=False)
    record = failure_record("ValueError: no", "tests.f", second.attempt, "attempts")
    assert consumer.fail(consumer.decode(second), record)
    assert consumer.release([third]) == 1
    again: list[Any] = []

    def both_back() -> bool:
        # streams hand a released entry to the next reclaim; the others to the next take
        again.extend(consumer.reclaim(5) + consumer.take(10))
        return len(again) == 2

    wait_for(both_back)
    assert sorted((t.id, t.attempt) for t in again) == sorted([(first.id, 1), (third.id, 1)])
    (failed,) = queue.failed()
    assert (failed.event, failed.error, failed.receiver) == ("b", "ValueError: no", "tests.f")
    assert consumer.ack(again) == []


def test_consumer_serves_only_its_levels_and_checks_them(make_queue: MakeQueue) -> None:
    queue = make_queue(priorities=[1, 5, 10])
    for level in (1, 5, 10):
        queue.send("job", level, priority=level)
    middle = queue.consumer(lease=30.0, serve="2-9")
    assert middle.levels == [5]
    assert [middle.decode(t).payload for t in middle.take(10)] == [5]
    with pytest.raises(ConfigError) as info:
        queue.consumer(lease=30.0, serve="20-")
    assert info.value.option == "serve"


def test_consumer_raises_zevents_errors_when_redis_is_gone() -> None:
    server = RedisServer().start()
    queue = RedisQueue("gone", server.url, socket_timeout=0.5)
    consumer = queue.consumer(lease=30.0)
    server.stop()
    try:
        with pytest.raises(QueueUnavailable, match="unavailable"):
            consumer.take(1)
    finally:
        queue.close()


def test_registry_records_beats_and_shutdown_requests(url: str) -> None:
    registry = WorkerRegistry(url, prefix="reg:")
    try:
        started = registry.time_ms()
        registry.beat("w1", {"queues": ["q"], "status": "idle"}, 5000)
        (entry,) = registry.workers()
        assert entry["id"] == "w1"
        assert entry["beat"] >= started
        assert registry.shutdown_requested_at() == 0
        asked = registry.request_shutdown()
        assert registry.shutdown_requested_at() == asked >= started
        registry.forget("w1")
        assert registry.workers() == []
    finally:
        registry.close()


def test_a_worker_over_several_prefixes_needs_an_explicit_registry(
    make_queue: MakeQueue, url: str, start_worker: StartWorker
) -> None:
    a, b = make_queue("a", prefix="one:"), make_queue("b", prefix="two:")
    with pytest.raises(ConfigError, match="several key prefixes") as info:
        Worker([a, b], Bus())
    assert info.value.option == "registry"
    registry = WorkerRegistry(url, prefix="one:")
    bus = Bus()
    seen: list[Any] = []
    bus.listen("x", lambda e, p: seen.append(p))
    b.send("x", "from b")
    start_worker([a, b], bus, registry=registry)
    wait_for(lambda: seen == ["from b"])
    wait_for(lambda: [w["queues"] for w in registry.workers()] == [["a", "b"]])
    registry.close()


class DecimalJson:
    """A JSON serializer that keeps decimals as strings (and reads them back)."""

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, default=lambda o: {"$decimal": str(o)}).encode()

    def loads(self, data: bytes) -> Any:
        def hook(obj: dict[str, Any]) -> Any:
            return decimal.Decimal(obj["$decimal"]) if set(obj) == {"$decimal"} else obj

        return json.loads(data, object_hook=hook)


def test_a_queue_writes_and_reads_bodies_with_its_serializer(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis
) -> None:
    queue = make_queue("money", serializer=DecimalJson())
    message_id = queue.send("invoice.due", {"total": decimal.Decimal("12.30")})
    stored = json.loads(raw.hget(queue.keys.key("msgs"), message_id) or b"")
    assert stored["payload"] == {"total": {"$decimal": "12.30"}}  # still a JSON object
    bus = Bus()
    seen: list[Any] = []
    bus.listen("invoice.*", lambda e, p: seen.append(p))
    start_worker(make_queue("money", serializer=DecimalJson()), bus)
    wait_for(lambda: seen)
    assert seen == [{"total": decimal.Decimal("12.30")}]


@pytest.mark.parametrize("driver", ["list", "sorted-set", "stream"])
def test_a_foreign_message_without_priority_is_retried_at_the_default_priority(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis, driver: str
) -> None:
    """A body with no "priority" (another program wrote it) goes back at the queue's
    default priority when its first attempt fails, not to the failed store."""
    queue = make_queue("foreign", driver=driver, priorities=[0, 5], default_priority=5)
    body = json.dumps({"event": "foreign.job", "payload": {"n": 1}})
    if driver == "stream":
        raw.xadd(queue.keys.ready(5), {"i": "ext-1", "m": body})
    else:
        raw.hset(queue.keys.key("msgs"), "ext-1", body)
        if driver == "list":
            raw.rpush(queue.keys.ready(5), "ext-1")
        else:
            raw.zadd(queue.keys.ready(5), {"ext-1": 1})
    bus = Bus()
    attempts: list[int] = []

    def flaky(event: str, payload: Any) -> None:
        from zevents.redis import current

        attempts.append(current().attempt)
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")

    bus.listen("foreign.*", flaky)
    from zevents.redis import RetryPolicy

    start_worker(queue, bus, retry=RetryPolicy(base=0.05))
    wait_for(lambda: attempts == [1, 2])
    wait_for(lambda: queue.stats()["processing"] == 0)
    assert queue.failed() == []


def test_the_protocol_builds_calls_and_parses_replies_without_io() -> None:
    """A plan is a generator of steps: it can be driven by hand, with no Redis at all."""
    from zevents.redis.keys import QueueKeys

    driver = CoreDriver(QueueKeys("q", (5, 0)), "list", 0, BodyCodec())
    plan: Plan[Any] = driver.take(Reader("c", 30_000, (5, 0)), 10)
    step = next(plan)
    assert isinstance(step, Call)
    assert step.script == "take.lua"
    assert step.keys[-2:] == ["zevents:{q}:ready:5", "zevents:{q}:ready:0"]
    assert list(step.args) == ["list", 0, 2, 5, 0, 10, 30_000, 2, 5, 0]
    with pytest.raises(StopIteration) as done:
        plan.send([b"7", b"1-1", b'{"event":"e"}', 1, 5])
    (taken,) = done.value.value
    assert (taken.id, taken.token, taken.attempt, taken.priority) == ("1-1", "7", 1, 5)


def test_a_queue_records_what_it_is_and_opens_by_name_alone(
    make_queue: MakeQueue, url: str
) -> None:
    from zevents.redis import queues

    queue = make_queue("prio", driver="sorted-set", priorities=[1, 5, 10], default_priority=5)
    queue.send("job", 1)
    again = make_queue("prio")  # no driver, no levels: as recorded
    assert (again.driver_name, again.priorities, again.default_priority) == (
        "sorted-set",
        (10, 5, 1),
        5,
    )
    assert again.stats()["ready"] == {10: 0, 5: 1, 1: 0}
    (listed,) = queues(url)
    assert (listed.name, listed.driver, listed.priorities) == ("prio", "sorted-set", (10, 5, 1))


def test_opening_a_queue_as_something_else_names_what_it_is_and_writes_nothing(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    make_queue("orders", priorities=[10, 5, 1]).send("x", 1)
    before = sorted(raw.keys("*"))
    with pytest.raises(ConfigError, match="is a list queue \\(priorities 10,5,1\\)") as info:
        make_queue("orders", driver="stream").stats()
    assert info.value.option == "driver"
    with pytest.raises(ConfigError, match="has the priorities 10,5,1, not 0") as info:
        make_queue("orders", priorities=[0]).stats()
    assert info.value.option == "priorities"
    assert sorted(raw.keys("*")) == before


def test_inspecting_an_unknown_queue_says_so_and_writes_nothing(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    from zevents.errors import QueueNotFound

    make_queue("real").send("x", 1)
    before = sorted(raw.keys("*"))
    with pytest.raises(QueueNotFound, match=r"no queue 'ghost'.*the queues are: real") as info:
        make_queue("ghost", driver="stream").stats()
    assert (info.value.name, info.value.known) == ("ghost", ["real"])
    assert make_queue("ghost").failed() == []
    assert sorted(raw.keys("*")) == before


@pytest.mark.parametrize("driver", ["list", "sorted-set", "stream"])
def test_stats_say_when_the_message_first_in_line_was_sent(
    make_queue: MakeQueue, driver: str
) -> None:
    queue = make_queue("aged", driver=driver, priorities=[1, 5])
    queue.consumer()  # the queue exists, empty
    assert queue.stats()["oldest_ready_at"] is None
    before = queue.registry().time_ms() / 1000.0
    queue.send("first", 1, priority=1)
    queue.send("second", 2, priority=5)
    oldest = queue.stats()["oldest_ready_at"]
    assert oldest is not None
    assert before - 0.01 <= oldest <= queue.registry().time_ms() / 1000.0


def test_check_send_refuses_options_the_queue_cannot_take(make_queue: MakeQueue) -> None:
    queue = make_queue("levels", priorities=[10, 5, 1])
    queue.check_send(priority=5, delay=2)
    with pytest.raises(ConfigError, match="priority 7 is not one of") as info:
        queue.check_send(priority=7)
    assert info.value.option == "priority"
    assert not queue.exists()  # checking wrote nothing, sent nothing


def test_listing_workers_without_pruning_writes_nothing(url: str, raw: redis.Redis) -> None:
    from zevents.redis import workers

    registry = WorkerRegistry(url)
    registry.beat("gone", {"queues": []}, 1)
    wait_for(lambda: workers(url, prune=False) == [])  # stale after 1 ms
    assert raw.hlen("zevents:workers") == 1
    assert workers(url) == []
    assert raw.hlen("zevents:workers") == 0
    registry.close()
