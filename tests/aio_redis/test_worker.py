"""The asyncio Worker: messages in flight at once, the sync worker's settling, stop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import threading
from collections import Counter
from typing import Any

import pytest
import redis

from tests.aio_redis.conftest import DRIVERS, eventually, run, wait_for
from tests.helpers import command_calls
from tests.redis.conftest import expire_leases
from zevents.aio.redis import RedisQueue, Worker, current
from zevents.errors import ConfigError, PermanentError, WaitingError
from zevents.eventbus import Bus
from zevents.events import WORKER_AFTER, WORKER_BEFORE, WORKER_FAILED
from zevents.redis import RedisQueue as SyncQueue
from zevents.redis import RetryPolicy, request_shutdown
from zevents.redis import Worker as SyncWorker


def test_bad_options_raise_config_errors() -> None:
    queue = RedisQueue("jobs", "redis://127.0.0.1:1/0")
    bad: list[tuple[str, Any]] = [("concurrency", 0), ("prefetch", True), ("max_messages", 0)]
    for option, value in bad:
        with pytest.raises(ConfigError) as caught:
            Worker(queue, Bus(), **{option: value})
        assert caught.value.option == option
    with pytest.raises(ConfigError) as caught:
        Worker([], Bus())
    assert caught.value.option == "queues"
    with pytest.raises(ConfigError, match=r"zevents\.aio\.redis\.RedisQueue") as caught:
        Worker([SyncQueue("jobs", "redis://127.0.0.1:1/0")], Bus())  # type: ignore[list-item]
    assert caught.value.option == "queues"


@pytest.mark.parametrize("driver", DRIVERS)
def test_ten_async_receivers_are_in_flight_at_once_with_concurrency_ten(
    url: str, driver: str
) -> None:
    counts = {"now": 0, "peak": 0}
    seen: list[int] = []

    async def receiver(event: str, payload: Any) -> None:
        counts["now"] += 1
        counts["peak"] = max(counts["peak"], counts["now"])
        await asyncio.sleep(0.2)
        counts["now"] -= 1
        seen.append(payload)

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver=driver) as queue:
            await queue.send_many([("job", n) for n in range(25)])
            bus = Bus()
            bus.listen("job", receiver)
            assert await Worker(queue, bus, concurrency=10, max_messages=25).run() == 25
            assert (await queue.stats())["processing"] == 0

    run(scenario())
    assert counts["peak"] == 10
    assert sorted(seen) == list(range(25))


def test_receivers_run_in_registration_order_and_current_is_each_ones_message(
    url: str,
) -> None:
    calls: list[tuple[str, Any, str]] = []
    bus = Bus()
    bus.listen("job", lambda e, p: calls.append(("first", p, current().id)))

    async def second(event: str, payload: Any) -> None:
        await asyncio.sleep(0.01 * (5 - payload))  # the others run meanwhile
        calls.append(("second", payload, current().id))

    bus.listen("job", second)
    bus.listen("j*", lambda e, p: calls.append(("third", p, current().id)))

    async def scenario() -> list[str]:
        async with RedisQueue("jobs", url) as queue:
            ids = [await queue.send("job", n) for n in range(5)]
            await Worker(queue, bus, concurrency=5, max_messages=5).run()
            return ids

    ids = run(scenario())
    for n, message_id in enumerate(ids):
        assert [c for c in calls if c[1] == n] == [
            ("first", n, message_id),
            ("second", n, message_id),
            ("third", n, message_id),
        ]
    assert [c[1] for c in calls if c[0] == "second"] == [4, 3, 2, 1, 0]  # concurrently


@pytest.mark.parametrize("driver", DRIVERS)
def test_retries_permanent_and_waiting_errors_settle_as_the_sync_worker_does(
    url: str, driver: str
) -> None:
    attempts: Counter[str] = Counter()
    done: list[tuple[str, int]] = []

    async def receiver(event: str, payload: Any) -> None:
        attempts[event] += 1
        await asyncio.sleep(0)
        if event == "flaky" and current().attempt == 1:
            raise RuntimeError("not yet")
        if event == "bad":
            raise ValueError(f"bad total {payload}")
        if event == "perm":
            raise PermanentError("never")
        if event == "wait" and attempts[event] == 1:
            raise WaitingError("later", delay=0.05)
        done.append((event, current().attempt))

    async def scenario() -> list[Any]:
        async with RedisQueue("jobs", url, driver=driver) as queue:
            bus = Bus()
            for event in ("flaky", "bad", "perm", "wait"):
                await queue.send(event, 9)
                bus.listen(event, receiver)
            policy = RetryPolicy(max_attempts=2, backoff="linear", base=0.05)
            worker = Worker(queue, bus, retry=policy, concurrency=4)
            task = asyncio.create_task(worker.run())

            async def settled() -> list[Any] | None:
                failed = await queue.failed()
                return failed if len(done) == 2 and len(failed) == 2 else None

            failed = await eventually(settled)
            worker.stop()
            await task
            assert (await queue.stats())["processing"] == 0
            return list(failed)

    failed = run(scenario())
    assert sorted(done) == [("flaky", 2), ("wait", 1)]  # the wait did not count
    by_event = {f.event: f for f in failed}
    assert (by_event["bad"].attempts, by_event["bad"].reason) == (2, "attempts")
    assert by_event["bad"].error == "ValueError: bad total 9"
    assert (by_event["bad"].receiver or "").endswith("receiver")
    assert (by_event["perm"].attempts, by_event["perm"].reason) == (1, "permanent")
    assert attempts == {"flaky": 2, "bad": 2, "perm": 1, "wait": 2}


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_serial_group_runs_one_at_a_time_in_order_beside_other_messages(
    url: str, driver: str
) -> None:
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    order: list[int] = []

    async def receiver(event: str, payload: Any) -> None:
        group = current().serial_group or "none"
        active[group] += 1
        peak[group] = max(peak[group], active[group])
        await asyncio.sleep(0.02)
        active[group] -= 1
        if group == "g":
            order.append(payload)

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver=driver) as queue:
            for n in range(4):
                await queue.send("job", n, serial_group="g")
                await queue.send("job", 100 + n)
            bus = Bus()
            bus.listen("job", receiver)
            await Worker(queue, bus, concurrency=10, max_messages=8).run()

    run(scenario())
    assert order == [0, 1, 2, 3]
    assert peak["g"] == 1
    assert peak["none"] > 1


async def _started(queue: RedisQueue, count: int, **options: Any) -> tuple[Worker, Any, Any]:
    """A worker running 30 messages of 0.3 s, five at a time, once ``count`` started;
    the task running it; the names started and done."""
    await queue.send_many([("job", n) for n in range(30)])
    started: list[int] = []
    done: list[int] = []

    async def receiver(event: str, payload: Any) -> None:
        started.append(payload)
        await asyncio.sleep(0.3)
        done.append(payload)

    bus = Bus()
    bus.listen("job", receiver)
    worker = Worker(queue, bus, concurrency=5, **options)
    task = asyncio.create_task(worker.run())
    await eventually(lambda: len(started) >= count)
    return worker, task, (started, done)


@pytest.mark.parametrize("driver", DRIVERS)
def test_stop_finishes_the_messages_in_flight_and_gives_back_the_rest(
    url: str, driver: str
) -> None:
    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver=driver) as queue:
            worker, task, (started, done) = await _started(queue, 5)
            worker.stop()
            assert await task == len(started)
            assert sorted(done) == sorted(started)
            stats = await queue.stats()
            assert (stats["processing"], stats["failed"]) == (0, 0)
            assert sum(stats["ready"].values()) == 30 - len(done)
            assert await queue.registry().workers() == []

    run(scenario())


@pytest.mark.parametrize("driver", DRIVERS)
def test_cancelling_the_worker_gives_back_its_messages_without_counting_an_attempt(
    url: str, driver: str
) -> None:
    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver=driver) as queue:
            _, task, (started, done) = await _started(queue, 5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert len(started) == 5
            assert done == []
            stats = await queue.stats()
        # Given-back stream entries stay pending, idle past their lease, for the next
        # reclaim; the other drivers put them back in line.
        pending = 5 if driver == "stream" else 0
        assert (stats["processing"], sum(stats["ready"].values())) == (pending, 30 - pending)
        with SyncQueue("jobs", url) as sync:
            consumer = sync.consumer()
            taken = consumer.reclaim(5) + consumer.take(30)
        assert len(taken) == 30
        assert {t.attempt for t in taken} == {1}

    run(scenario())


def _blocked_script_call(admin: Any) -> bool:
    """Whether Redis holds a client's script call back (a client paused for writes)."""
    return any(c.get("cmd") == "evalsha" and "b" in c.get("flags", "") for c in admin.client_list())


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_an_acknowledgement_cut_off_by_a_cancellation_is_not_reported_as_a_lost_lease(
    url: str, driver: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The worker is cancelled while Redis holds its acknowledgement of "first" (paused for
    # writes); Redis then runs it, but the reply is never read. The worker acknowledges
    # "first" again as it stops: Redis says its lease is gone, which is no news of
    # another worker (there is none), so it must not be logged as one.
    admin = redis.Redis.from_url(url, decode_responses=True)
    held: dict[str, Any] = {}

    async def second(event: str, payload: Any) -> None:
        # "first" has finished (one lane ran it just before): the dispatcher's next
        # script call acknowledges it (the next beat is due in 20 s).
        admin.client_pause(5000, all=False)
        await eventually(lambda: _blocked_script_call(admin), what="the acknowledgement")
        # The loop is held from here on: the cancellation lands before the reply is read.
        held["task"].cancel()
        admin.client_unpause()
        with SyncQueue("jobs", url, driver=driver) as sync:
            wait_for(lambda: sync.stats()["processing"] == 1, what="the held acknowledgement")

    async def scenario() -> dict[str, Any]:
        async with RedisQueue("jobs", url, driver=driver) as queue:
            bus = Bus()
            bus.listen("first", lambda event, payload: None)
            bus.listen("second", second)
            bus.listen("warm", lambda event, payload: None)
            worker = Worker(queue, bus, concurrency=2, keep_alive=60)
            held["task"] = task = asyncio.create_task(worker.run())
            # One message through first: every script is loaded (a call refused with
            # NOSCRIPT would change nothing in Redis), and the worker's first beat is done.
            await queue.send("warm", 0)

            async def warmed() -> bool:
                stats = await queue.stats()
                return stats["processing"] == 0 and not sum(stats["ready"].values())

            await eventually(warmed, what="the warm-up message acknowledged")
            await queue.send_many([("first", 1), ("second", 2)])
            with pytest.raises(asyncio.CancelledError):
                await task
            return await queue.stats()

    try:
        with caplog.at_level(logging.INFO):
            stats = run(scenario())
    finally:
        admin.client_unpause()
        admin.close()
    assert (stats["processing"], sum(stats["ready"].values()), stats["failed"]) == (0, 0, 0)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert not [m for level, m in messages if level >= logging.WARNING], messages
    assert [m for _, m in messages if "acknowledged by the earlier call" in m], messages


def test_a_shutdown_request_in_redis_stops_an_async_worker(url: str) -> None:
    async def scenario() -> None:
        async with RedisQueue("jobs", url) as queue:
            worker = Worker(queue, Bus())
            task = asyncio.create_task(worker.run())
            entry = (await eventually(queue.registry().workers))[0]
            assert (entry["id"], entry["in_flight"], entry["concurrency"]) == (worker.id, 0, 10)
            await asyncio.to_thread(request_shutdown, url)
            assert await asyncio.wait_for(task, 5) == 0

    run(scenario())


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_a_long_async_receiver_keeps_its_lease_while_another_worker_waits(
    url: str, driver: str
) -> None:
    runs: list[str] = []

    async def slow(event: str, payload: Any) -> None:
        runs.append("async")
        await asyncio.sleep(1.2)

    sync_bus = Bus()
    sync_bus.listen("job", lambda e, p: runs.append("sync"))

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver=driver) as queue:
            await queue.send("job")
            bus = Bus()
            bus.listen("job", slow)
            task = asyncio.create_task(Worker(queue, bus, keep_alive=0.3, max_messages=1).run())
            await eventually(lambda: runs)
            other = SyncWorker(SyncQueue("jobs", url), sync_bus, keep_alive=0.3)
            thread = threading.Thread(target=other.run, daemon=True)
            thread.start()  # it looks for expired leases every 0.15 s
            try:
                assert await task == 1
            finally:
                other.stop()
                await asyncio.to_thread(thread.join, 10)

    run(scenario())
    assert runs == ["async"]


def test_hooks_fire_before_after_and_failed_and_async_hooks_are_awaited(url: str) -> None:
    seen: list[tuple[str, Any]] = []
    bus = Bus()

    async def hook(event: str, payload: Any) -> None:
        await asyncio.sleep(0)
        seen.append((event, payload.get("event")))

    for name in (WORKER_BEFORE, WORKER_AFTER, WORKER_FAILED):
        bus.listen(name, hook)
    bus.listen("ok", lambda e, p: None)
    bus.listen("no", lambda e, p: (_ for _ in ()).throw(PermanentError("no")))

    async def scenario() -> None:
        async with RedisQueue("jobs", url) as queue:
            await queue.send("ok")
            await queue.send("no")
            await Worker(queue, bus, concurrency=1, max_messages=2).run()

    run(scenario())
    assert seen == [
        (WORKER_BEFORE, "ok"),
        (WORKER_AFTER, "ok"),
        (WORKER_BEFORE, "no"),
        (WORKER_FAILED, "no"),
    ]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_sync_producer_and_an_async_worker_share_a_queue_and_the_reverse(
    url: str, driver: str
) -> None:
    seen: list[tuple[str, Any, int]] = []

    async def to_async(event: str, payload: Any) -> None:
        seen.append(("async", payload, current().priority))

    with SyncQueue("jobs", url, driver=driver, priorities=[0, 5]) as sync:
        sync.send("job", 1, priority=5)
        sync.send_many([("job", 2), {"event": "job", "payload": 3, "serial_group": "g"}])

    async def scenario() -> None:
        async with RedisQueue("jobs", url) as queue:
            bus = Bus()
            bus.listen("job", to_async)
            await Worker(queue, bus, max_messages=3).run()
            await queue.send("job", 4, priority=5, identifier="four")
            await queue.send("job", 5, serial_group="g")

    run(scenario())
    sync_bus = Bus()
    sync_bus.listen("job", lambda e, p: seen.append(("sync", p, current().priority)))
    with SyncQueue("jobs", url) as sync:
        SyncWorker(sync, sync_bus, max_messages=2).run()
        stats = sync.stats()
        assert (stats["processing"], sum(stats["ready"].values()), stats["serial"]) == (0, 0, 0)
        assert sync.unfinished(["four"]) == set()
    assert sorted(seen) == [
        ("async", 1, 5),
        ("async", 2, 0),
        ("async", 3, 0),
        ("sync", 4, 5),
        ("sync", 5, 0),
    ]


def test_handle_signals_false_leaves_the_applications_handlers_alone(url: str) -> None:
    def mine(signum: int, frame: object) -> None:
        return None

    seen: list[object] = []

    async def scenario() -> None:
        async with RedisQueue("jobs", url) as queue:
            await queue.send("job")
            bus = Bus()
            bus.listen("job", lambda e, p: seen.append(signal.getsignal(signal.SIGTERM)))
            await Worker(queue, bus, max_messages=1).run(handle_signals=False)

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        run(scenario())
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [mine]


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_dead_workers_whole_batch_comes_back_without_waiting_for_the_next_reclaim(
    url: str, driver: str
) -> None:
    """As for the sync worker: a reclaim that stopped at its limit is followed by more
    as soon as the lanes have room, not ``keep_alive / 2`` (30 s here) later."""
    count = 260 if driver == "stream" else 1060  # over two reclaims' limit
    sync = SyncQueue("jobs", url, driver=driver)
    sync.send_many([("x", i) for i in range(count)])
    dead = sync.consumer(lease=30.0, serve=[0])
    raw = redis.Redis.from_url(url)
    try:
        expire_leases(raw, sync, dead.name, dead.take(count))
    finally:
        raw.close()
        sync.close()
    seen: list[int] = []

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver=driver, consumer="rescuer") as queue:
            bus = Bus()
            bus.listen("x", lambda e, p: seen.append(p))
            worker = Worker(queue, bus, concurrency=8, keep_alive=60)
            task = asyncio.create_task(worker.run(handle_signals=False))
            await eventually(lambda: len(seen) >= count, timeout=20, what="every message")
            worker.stop()
            await task
            assert (await queue.stats())["processing"] == 0

    run(scenario(), timeout=40)
    assert sorted(seen) == list(range(count))


def test_the_next_take_leaves_while_the_lanes_still_run_the_batch_before(
    url: str, raw: redis.Redis
) -> None:
    """Quick messages (a receiver that never awaits) keep the loop: the lane that finds
    few waiting lets the dispatcher send the next take, so Redis works on it while the
    lanes run the rest. Seen from the receiver: the server's script calls rise while
    the messages waiting in this worker fall (no new batch came in between); if the take
    left only once the lanes were idle, the calls would rise only with a new batch."""
    seen: list[tuple[int, int]] = []
    worker: Worker

    def receiver(event: str, payload: Any) -> None:
        seen.append((worker.state.waiting, command_calls(raw, "evalsha")))

    async def scenario() -> None:
        nonlocal worker
        async with RedisQueue("jobs", url, driver="list") as queue:
            await queue.send_many([("job", n) for n in range(600)])
            bus = Bus()
            bus.listen("job", receiver)
            worker = Worker(queue, bus, concurrency=4, max_messages=600)
            assert await worker.run(handle_signals=False) == 600

    run(scenario())
    assert len(seen) == 600
    # calls rose, waiting fell
    overlapped = [(a, b) for a, b in itertools.pairwise(seen) if b[1] > a[1] and b[0] < a[0]]
    assert overlapped, seen[:200]
