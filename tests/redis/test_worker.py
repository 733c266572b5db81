"""Workers: delivery, retries, failures, the failed store, hooks and current()."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.redis.conftest import DRIVERS, Running, expire_leases, wait_for
from zevents.errors import PermanentError, QueueError, WaitingError
from zevents.eventbus import Bus
from zevents.events import WORKER_AFTER, WORKER_BEFORE, WORKER_FAILED
from zevents.redis import RedisQueue, RetryPolicy, current

MakeQueue = Callable[..., RedisQueue]
StartWorker = Callable[..., Running]


def delayed_due_in(raw: redis.Redis, queue: RedisQueue) -> float:
    """Seconds (Redis clock) until the single delayed message of ``queue`` is due."""
    members: Any = raw.zrange(queue.keys.key("delayed"), 0, -1, withscores=True)
    assert len(members) == 1, members
    return (float(members[0][1]) - queue.registry().time_ms()) / 1000.0


@pytest.mark.parametrize("driver", DRIVERS)
def test_worker_fires_each_message_on_its_bus_and_finishes_it(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver)
    bus = Bus()
    seen: list[Any] = []
    bus.listen("orders.*", lambda event, payload: seen.append((event, payload)))
    start_worker(queue, bus)
    for i in range(50):
        queue.send("orders.created", {"n": i})
    wait_for(lambda: len(seen) == 50)
    assert sorted(p["n"] for _, p in seen) == list(range(50))
    if driver != "set":
        assert [p["n"] for _, p in seen] == list(range(50))
    wait_for(lambda: queue.stats()["processing"] == 0)
    assert sum(queue.stats()["ready"].values()) == 0


@pytest.mark.parametrize("driver", DRIVERS)
def test_current_describes_the_message_being_processed(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver, priorities=[0, 7])
    bus = Bus()
    seen: list[Any] = []
    bus.listen("x", lambda e, p: seen.append(current()))
    msg_id = queue.send("x", 1, priority=7)
    start_worker(queue, bus)
    wait_for(lambda: seen)
    message = seen[0]
    assert (message.id, message.event, message.attempt, message.priority) == (msg_id, "x", 1, 7)
    assert message.enqueued_at == pytest.approx(time.time(), abs=30)


def test_current_outside_a_worker_raises() -> None:
    with pytest.raises(QueueError, match="inside a worker"):
        current()


@pytest.mark.parametrize("driver", DRIVERS)
def test_failed_attempts_are_retried_then_stored_as_failed(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver, priorities=[1, 3])
    bus = Bus()
    attempts: list[tuple[int, int]] = []

    def flaky(event: str, payload: Any) -> None:
        attempts.append((current().attempt, current().priority))
        raise ValueError(f"bad total {payload}")

    bus.listen("pay", flaky)
    msg_id = queue.send("pay", 9, priority=3)
    start_worker(queue, bus, retry=RetryPolicy(max_attempts=3, backoff="linear", base=0.05))
    failed = wait_for(queue.failed)
    assert attempts == [(1, 3), (2, 3), (3, 3)]  # the priority is kept across retries
    entry = failed[0]
    assert entry.event == "pay"
    assert entry.payload == 9
    assert entry.attempts == 3
    assert entry.error == "ValueError: bad total 9"
    assert entry.receiver is not None
    assert entry.receiver.endswith("flaky")
    assert entry.failed_at == pytest.approx(time.time(), abs=30)
    assert entry.id.split("|")[0] == msg_id
    assert queue.stats()["failed"] == 1


@pytest.mark.parametrize(
    ("backoff", "expected"), [("linear", [2.0, 4.0]), ("exponential", [2.0, 4.0, 8.0])]
)
def test_retry_waits_the_backoff_of_the_failed_attempt(
    make_queue: MakeQueue, raw: redis.Redis, backoff: str, expected: list[float]
) -> None:
    queue = make_queue(driver="list")
    policy = RetryPolicy(max_attempts=10, backoff=backoff, base=2.0)
    from zevents.redis.worker import Worker

    bus = Bus()
    bus.listen("x", lambda e, p: (_ for _ in ()).throw(RuntimeError("no")))
    queue.send("x", 1)
    waits = []
    worker = Worker(queue, bus, retry=policy)
    for attempt in range(1, len(expected) + 1):
        taken = queue.consumer(lease=30.0, serve=[0]).take(1)
        assert taken[0].attempt == attempt
        worker.state.add(0, taken)
        worker.state.start(0, taken[0])
        worker._process(0, worker.consumers[0], taken[0])
        waits.append(delayed_due_in(raw, queue))
        delayed = queue.keys.key("delayed")
        members: Any = raw.zrange(delayed, 0, -1)
        raw.zadd(delayed, dict.fromkeys(members, 0))  # due now
    assert waits == pytest.approx(expected, abs=0.25)
    assert RetryPolicy(backoff="exponential", base=1, cap=5).delay(10) == 5


@pytest.mark.parametrize("driver", DRIVERS)
def test_permanent_error_fails_the_message_at_once(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver)
    bus = Bus()
    calls: list[int] = []

    def refuse(event: str, payload: Any) -> None:
        calls.append(payload)
        raise PermanentError("cannot ever work")

    bus.listen("x", refuse)
    queue.send("x", 1)
    start_worker(queue, bus)
    failed = wait_for(queue.failed)
    assert calls == [1]
    assert failed[0].error == "PermanentError: cannot ever work"
    assert failed[0].reason == "permanent"
    assert failed[0].attempts == 1


@pytest.mark.parametrize("driver", DRIVERS)
def test_waiting_error_puts_the_message_back_without_counting_an_attempt(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver)
    bus = Bus()
    attempts: list[int] = []
    done: list[float] = []

    def wait_twice(event: str, payload: Any) -> None:
        attempts.append(current().attempt)
        if len(attempts) < 3:
            raise WaitingError("not yet", delay=0.1)
        done.append(time.monotonic())

    bus.listen("x", wait_twice)
    queue.send("x", 1)
    start_worker(queue, bus, retry=RetryPolicy(max_attempts=1))
    wait_for(lambda: done)
    assert attempts == [1, 1, 1]
    assert queue.failed() == []


def test_waiting_error_without_delay_waits_the_policy_backoff(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    from zevents.redis.worker import Worker

    queue = make_queue()
    bus = Bus()
    bus.listen("x", lambda e, p: (_ for _ in ()).throw(WaitingError("later")))
    queue.send("x", 1)
    worker = Worker(queue, bus, retry=RetryPolicy(backoff="linear", base=3.0))
    taken = queue.consumer(lease=30.0, serve=[0]).take(1)
    worker.state.add(0, taken)
    worker.state.start(0, taken[0])
    worker._process(0, worker.consumers[0], taken[0])
    assert delayed_due_in(raw, queue) == pytest.approx(3.0, abs=0.25)
    assert raw.hget(queue.keys.key("attempts"), taken[0].id) == b"0"


@pytest.mark.parametrize("driver", DRIVERS)
def test_failed_store_can_be_retried_and_flushed(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver, priorities=[0, 5])
    bus = Bus()
    healed = threading.Event()
    ok: list[Any] = []

    def receiver(event: str, payload: Any) -> None:
        if not healed.is_set():
            raise PermanentError("broken")
        ok.append(payload)

    bus.listen("a.*", receiver)
    bus.listen("b.*", receiver)
    queue.send("a.one", 1, priority=5)
    queue.send("b.two", 2)
    queue.send("a.three", 3)
    start_worker(queue, bus)
    wait_for(lambda: len(queue.failed()) == 3)
    healed.set()
    ids = [f.id for f in queue.failed() if f.payload == 1]
    assert queue.retry_failed(ids=ids) == 1
    wait_for(lambda: ok == [1])
    assert queue.retry_failed(event="a.*") == 1
    wait_for(lambda: ok == [1, 3])
    assert [f.payload for f in queue.failed()] == [2]
    assert queue.flush_failed() == 1
    assert queue.failed() == []
    assert queue.stats()["failed"] == 0


@pytest.mark.parametrize("driver", DRIVERS)
def test_serial_group_runs_one_at_a_time_in_order_across_two_workers(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    bus = Bus()
    lock = threading.Lock()
    running: dict[str, int] = {}
    overlap: list[str] = []
    order: dict[str, list[int]] = {"g1": [], "g2": []}

    def receiver(event: str, payload: Any) -> None:
        group = payload["g"]
        with lock:
            running[group] = running.get(group, 0) + 1
            if running[group] > 1:
                overlap.append(group)
        time.sleep(0.01)
        with lock:
            order[group].append(payload["n"])
            running[group] -= 1
        if payload["n"] == 2 and current().attempt == 1:
            raise ValueError("retry me")  # a retry keeps its place at the head

    bus.listen("x", receiver)
    queue = make_queue(driver=driver)
    for n in range(8):
        for group in ("g1", "g2"):
            queue.send("x", {"g": group, "n": n}, serial_group=group)
    policy = RetryPolicy(base=0.05)
    start_worker(make_queue(driver=driver, consumer="w1"), bus, retry=policy)
    start_worker(make_queue(driver=driver, consumer="w2"), bus, retry=policy)
    wait_for(lambda: len(order["g1"]) == 9 and len(order["g2"]) == 9)
    assert overlap == []
    expected = [0, 1, 2, 2, 3, 4, 5, 6, 7]
    assert order == {"g1": expected, "g2": expected}


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_a_slow_group_does_not_hold_up_others(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    bus = Bus()
    release = threading.Event()
    done: list[str] = []

    def receiver(event: str, payload: str) -> None:
        if payload == "slow":
            release.wait(10)
        done.append(payload)

    bus.listen("x", receiver)
    queue = make_queue(driver=driver)
    queue.send("x", "slow", serial_group="a")
    queue.send("x", "after-slow", serial_group="a")
    queue.send("x", "other", serial_group="b")
    start_worker(make_queue(driver=driver, consumer="w1"), bus)
    start_worker(make_queue(driver=driver, consumer="w2"), bus)
    wait_for(lambda: "other" in done)
    assert "after-slow" not in done
    release.set()
    wait_for(lambda: done[-1] == "after-slow")


@pytest.mark.parametrize("driver", DRIVERS)
def test_hooks_fire_before_after_and_failed_with_details(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver)
    bus = Bus()
    hooks: list[tuple[str, Any]] = []
    bus.listen("zevents.worker.*", lambda e, p: hooks.append((e, p)))
    bus.listen("job", lambda e, p: None if p == "ok" else (_ for _ in ()).throw(KeyError(p)))
    queue.send("job", "ok")
    queue.send("job", "bad")
    start_worker(queue, bus, retry=RetryPolicy(max_attempts=1))
    wait_for(lambda: [e for e, _ in hooks].count(WORKER_BEFORE) == 2 and len(hooks) == 4)
    after = next(p for e, p in hooks if e == WORKER_AFTER)
    assert after["duration"] >= 0
    assert after["attempt"] == 1
    assert after["memory"] > 1_000_000
    failed = next(p for e, p in hooks if e == WORKER_FAILED)
    assert failed["error"] == "KeyError: 'bad'"
    assert failed["final"] is True
    assert [e for e, _ in hooks if not e.startswith("zevents.worker.")] == []


def test_worker_restricted_to_a_priority_range_takes_only_those(
    make_queue: MakeQueue, start_worker: StartWorker
) -> None:
    queue = make_queue(priorities=[10, 20, 30, 40])
    bus = Bus()
    seen: list[int] = []
    bus.listen("x", lambda e, p: seen.append(p))
    for p in (10, 20, 30, 40):
        queue.send("x", p, priority=p)
    start_worker(queue, bus, serve="20-30")
    wait_for(lambda: len(seen) == 2)
    assert seen == [30, 20]
    assert queue.stats()["ready"] == {40: 1, 30: 0, 20: 0, 10: 1}


def test_priority_range_strings_select_levels() -> None:
    from zevents.redis.retry import select_priorities

    levels = [10, 20, 25, 30, 40]
    assert select_priorities(levels, "10") == [10]
    assert select_priorities(levels, "20-40") == [40, 30, 25, 20]
    assert select_priorities(levels, "25-") == [40, 30, 25]
    assert select_priorities(levels, "-20") == [20, 10]
    assert select_priorities(levels, [40, 10]) == [40, 10]
    with pytest.raises(ValueError, match="select none"):
        select_priorities(levels, "50-")
    with pytest.raises(ValueError, match="bad priority range"):
        select_priorities(levels, "a-b")


@pytest.mark.parametrize("driver", DRIVERS)
def test_max_messages_stops_the_worker_and_gives_back_what_it_did_not_start(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver)
    bus = Bus()
    seen: list[int] = []
    bus.listen("x", lambda e, p: seen.append(p))
    queue.send_many([("x", i) for i in range(10)])
    run = start_worker(queue, bus, max_messages=3, prefetch=5)
    run.thread.join(10)
    assert run.result == 3
    assert len(seen) == 3
    stats = queue.stats()
    assert sum(stats["ready"].values()) + stats["processing"] == 7
    start_worker(make_queue(driver=driver), bus, keep_alive=0.5)
    wait_for(lambda: len(seen) == 10)
    assert sorted(seen) == list(range(10))


@pytest.mark.parametrize("driver", DRIVERS)
def test_bad_message_written_by_hand_goes_to_the_failed_store(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver)
    ready = queue.keys.ready(0)
    if driver == "stream":
        raw.xadd(ready, {"i": "bad-1", "m": "{not json"})
    else:
        raw.hset(queue.keys.key("msgs"), "bad-1", "{not json")
        add: dict[str, Callable[[], object]] = {
            "list": lambda: raw.rpush(ready, "bad-1", "ghost-2"),
            "sorted-set": lambda: raw.zadd(ready, {"bad-1": 0, "ghost-2": 1}),
            "set": lambda: raw.sadd(ready, "bad-1", "ghost-2"),
        }
        add[driver]()
    queue.send("x", "good")
    bus = Bus()
    seen: list[Any] = []
    bus.listen("x", lambda e, p: seen.append(p))
    start_worker(queue, bus)
    wait_for(lambda: seen == ["good"])
    failed = wait_for(
        lambda: len(queue.failed()) == (1 if driver == "stream" else 2) and queue.failed()
    )
    errors = sorted(f.error for f in failed)
    assert all(e.startswith("DecodeError: ") for e in errors), errors
    assert any("not valid JSON" in e for e in errors)
    if driver != "stream":
        assert any("no message body" in e and "ghost-2" in e for e in errors)


@pytest.mark.parametrize("driver", DRIVERS)
def test_fork_runs_receivers_in_a_child_and_survives_a_crash(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver)
    bus = Bus()
    parent = os.getpid()
    pids = make_queue("pids")

    def receiver(event: str, payload: str) -> None:
        if payload == "crash":
            os._exit(3)
        pids.client.rpush("seen", f"{os.getpid()}:{current().attempt}")

    bus.listen("x", receiver)
    queue.send("x", "crash")
    queue.send("x", "fine")
    start_worker(queue, bus, fork=True, retry=RetryPolicy(max_attempts=1))
    wait_for(lambda: pids.client.llen("seen") == 1 and queue.failed())
    first: Any = pids.client.lindex("seen", 0)
    pid, attempt = first.decode().split(":")
    assert int(pid) != parent
    assert attempt == "1"
    assert "exited with status 3" in queue.failed()[0].error


@pytest.mark.parametrize("driver", ["list", "sorted-set", "set"])
def test_a_message_whose_lease_expires_on_its_last_attempt_goes_to_the_failed_store(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver)
    queue.send("x", 1, identifier="i")
    for attempt in (1, 2):
        taken = queue.consumer(lease=30.0, serve=[0]).take(1)
        assert [t.attempt for t in taken] == [attempt]
        raw.zadd(queue.keys.key("processing"), {taken[0].id: 0})  # its worker died
        queue.consumer(lease=30.0, serve=[0]).reclaim(2)
    failed = queue.failed()
    assert len(failed) == 1
    assert failed[0].error.startswith("LeaseExpired: ")
    assert failed[0].reason == "lease-expired"
    assert failed[0].payload == 1
    assert queue.unfinished(["i"]) == set()
    assert queue.stats()["processing"] == 0


@pytest.mark.parametrize("driver", ["list", "sorted-set", "stream"])
def test_an_idle_worker_takes_a_delayed_message_soon_after_it_is_due(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    queue = make_queue(driver=driver)
    bus = Bus()
    seen: list[float] = []
    bus.listen("x", lambda e, p: seen.append(time.monotonic()))
    start_worker(queue, bus)
    sent = time.monotonic()
    queue.send("x", 1, delay=0.3)
    wait_for(lambda: seen)
    assert 0.25 <= seen[0] - sent < 1.3


def test_zevents_redis_without_redis_py_names_the_extra() -> None:
    """The parts that need redis-py say so; the ones that do not still import."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from zevents.errors import MissingExtraError\n"
        "import zevents.redis.defaults, zevents.redis.retry, zevents.redis.keys\n"
        "try:\n    from zevents.redis import RedisQueue\n"
        "except MissingExtraError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "pip install 'zevents[redis]'" in proc.stdout, proc.stderr


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_a_delayed_id_without_a_stored_body_goes_to_the_failed_store(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver)
    raw.zadd(queue.keys.key("delayed"), {"ghost-1": 0})
    assert queue.consumer(lease=30.0, serve=[0]).take(10) == []
    failed = queue.failed()
    assert [(f.id, f.reason) for f in failed] == [("ghost-1", "undecodable")]
    assert "no message body" in failed[0].error
    assert queue.stats()["delayed"] == 0


def test_retry_jitter_spreads_waits_below_the_backoff() -> None:
    exact = RetryPolicy(base=4.0)
    spread = RetryPolicy(base=4.0, jitter=0.5)
    waits = {spread.delay(2) for _ in range(50)}
    assert exact.delay(2) == 8.0
    assert all(4.0 <= w <= 8.0 for w in waits)
    assert len(waits) > 1
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_dead_workers_whole_batch_comes_back_without_waiting_for_the_next_reclaim(
    make_queue: MakeQueue, raw: redis.Redis, start_worker: StartWorker, driver: str
) -> None:
    """More expired leases than one reclaim recovers: the worker reclaims again in its
    next rounds. With keep_alive 60 its periodic reclaim comes every 30 s, so all of them
    arriving within 20 s means the rounds in between did it."""
    count = 260 if driver == "stream" else 1060  # over two reclaims' limit
    queue = make_queue(driver=driver)
    queue.send_many([("x", i) for i in range(count)])
    dead = queue.consumer(lease=30.0, serve=[0])
    expire_leases(raw, queue, dead.name, dead.take(count))
    seen: list[int] = []
    bus = Bus()
    bus.listen("x", lambda e, p: seen.append(p))
    start_worker(make_queue(driver=driver, consumer="rescuer"), bus, keep_alive=60)
    wait_for(lambda: len(seen) >= count, timeout=20, what="every message reclaimed")
    assert sorted(seen) == list(range(count))
    wait_for(lambda: queue.stats()["processing"] == 0, what="every message acknowledged")


_BUSY = "local n = 0 for i = 1, tonumber(ARGV[1]) do n = n + 1 end return n"


def _busy_loops(raw: redis.Redis, seconds: float) -> int:
    """How many turns of ``_BUSY`` keep this Redis busy for about ``seconds``."""
    turns = 1_000_000
    while True:
        started = time.perf_counter()
        raw.eval(_BUSY, 0, turns)
        took = time.perf_counter() - started
        if took > 0.2:  # long enough to project from on a loaded machine
            return int(turns * seconds / took)
        turns *= 4


@pytest.mark.parametrize("keep_alive", [30.0, 0.3], ids=["worker-first", "heartbeat-first"])
@pytest.mark.parametrize("driver", ["list", "stream"])
def test_an_acknowledgement_whose_reply_timed_out_is_not_reported_as_a_lost_lease(
    make_queue: MakeQueue,
    raw: redis.Redis,
    url: str,
    start_worker: StartWorker,
    caplog: pytest.LogCaptureFixture,
    driver: str,
    keep_alive: float,
) -> None:
    """Redis, busy past the worker's socket timeout, runs the acknowledgement after the
    worker stopped waiting for its reply; the round trip after the outage acknowledges
    again and finds nothing leased, and so may a lease renewal before it (a heartbeat
    every 0.1 s with keep_alive 0.3): said at INFO, not as a lease another worker took."""
    caplog.set_level(logging.INFO, logger="zevents")
    turns = _busy_loops(raw, 1.2)  # past the 0.3 s timeout, well under Redis' 5 s limit
    queue = make_queue(driver=driver, socket_timeout=0.3)
    blocker = redis.Redis.from_url(url, socket_timeout=30)
    held = blocker.connection_pool.get_connection()
    # A PING unanswered for 0.2 s: the script runs (Redis answers one in well under that).
    probe = redis.Redis.from_url(url, socket_timeout=0.2)
    handled: list[int] = []

    def busy() -> bool:
        try:
            probe.ping()
        except redis.TimeoutError:
            return True
        return False

    def receiver(event: str, payload: int) -> None:
        handled.append(payload)
        if payload:
            # Redis runs the script, then the acknowledgement the worker sends next.
            held.send_command("EVAL", _BUSY, 0, turns)  # type: ignore[no-untyped-call]
            wait_for(busy, what="Redis busy with the script")

    bus = Bus()
    bus.listen("x", receiver)
    try:
        start_worker(queue, bus, keep_alive=keep_alive)
        # First a message through: a first-ever EVALSHA of the ack script is refused
        # (NOSCRIPT) and acknowledges nothing, which would leave no doubt to test.
        queue.send("x", 0)
        wait_for(lambda: handled == [0] and queue.stats()["processing"] == 0, what="warm-up")
        queue.send("x", 1)
        wait_for(lambda: "acknowledged again" in caplog.text, what="the re-acknowledgement")
        assert held.read_response() == turns
    finally:
        blocker.connection_pool.release(held)
        blocker.close()
        probe.close()
    assert handled == [0, 1]
    assert "lease lost on" not in caplog.text
    again = [r for r in caplog.records if "no longer leased when" in r.getMessage()]
    assert again
    assert {r.levelno for r in again} == {logging.INFO}
    assert queue.stats()["processing"] == 0
