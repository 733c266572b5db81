"""Workers as processes: kill -9, signals, remote shutdown, heartbeats, Redis outages."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.redis.conftest import DRIVERS, Running, wait_for
from zevents.errors import QueueError
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RedisServer, current, request_shutdown, workers
from zevents.redis.message import Taken

MakeQueue = Callable[..., RedisQueue]
StartWorker = Callable[..., Running]
Spawn = Callable[..., subprocess.Popen[bytes]]


def wait_ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == b"ready", line


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_worker_killed_mid_message_loses_nothing(
    make_queue: MakeQueue, start_worker: StartWorker, spawn: Spawn, tmp_path: Path, driver: str
) -> None:
    queue = make_queue(driver=driver)
    queue.send("job.slow", {"name": "victim", "sleep": 30})
    queue.send("job.next", {"name": "second"})
    proc = spawn("jobs", driver, "0.5")
    wait_ready(proc)
    wait_for(lambda: (tmp_path / "victim.started").exists())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    bus = Bus()
    seen: list[tuple[str, int]] = []
    bus.listen("job.*", lambda e, p: seen.append((p["name"], current().attempt)))
    start_worker(make_queue(driver=driver), bus, keep_alive=0.5)
    # On the unordered set driver the killed worker may have done "second" first.
    expected = (
        [("victim", 2)] if (tmp_path / "second.done").exists() else [("second", 1), ("victim", 2)]
    )
    wait_for(lambda: len(seen) == len(expected))
    assert sorted(seen) == expected
    wait_for(lambda: queue.stats()["processing"] == 0)
    assert queue.failed() == []


@pytest.mark.parametrize(
    ("driver", "fork"), [(d, False) for d in DRIVERS] + [("list", True), ("stream", True)]
)
def test_sigterm_finishes_the_message_in_hand_and_exits_zero(
    make_queue: MakeQueue, spawn: Spawn, tmp_path: Path, driver: str, fork: bool
) -> None:
    queue = make_queue(driver=driver)
    queue.send("job.a", {"name": "a", "sleep": 0.5})
    queue.send("job.b", {"name": "b"})
    proc = spawn("jobs", driver, "30", env={"ZEVENTS_TEST_FORK": "1"} if fork else None)
    wait_ready(proc)
    wait_for(lambda: (tmp_path / "a.started").exists())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert (tmp_path / "a.done").exists()
    if driver != "set":  # unordered: the worker may have taken b first
        assert not (tmp_path / "b.started").exists()
    if not (tmp_path / "b.started").exists():
        assert queue.stats()["ready"] == {0: 1}
    assert queue.stats()["processing"] == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_worker_stops_on_a_signal_within_two_seconds(
    url: str, spawn: Spawn, signum: int
) -> None:
    proc = spawn("jobs", "stream", "30")
    wait_ready(proc)
    wait_for(lambda: workers(url))  # it is running and idle
    started = time.monotonic()
    proc.send_signal(signal.SIGHUP)  # ignored
    proc.send_signal(signum)
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("prefix", ["zevents:", "other:"])
def test_request_shutdown_stops_workers_started_before_it(
    url: str, make_queue: MakeQueue, start_worker: StartWorker, prefix: str
) -> None:
    bus = Bus()
    first = start_worker(make_queue(prefix=prefix), bus)
    wait_for(lambda: len(workers(url, prefix=prefix)) == 1)
    request_shutdown(url, prefix=prefix)
    first.thread.join(5)
    assert not first.thread.is_alive()
    later = start_worker(make_queue(prefix=prefix), bus)
    seen: list[int] = []
    bus.listen("x", lambda e, p: seen.append(p))
    make_queue(prefix=prefix).send("x", 1)
    wait_for(lambda: seen == [1])
    assert later.thread.is_alive()


def test_workers_report_heartbeats_with_their_current_message(
    url: str, make_queue: MakeQueue, start_worker: StartWorker
) -> None:
    bus = Bus()
    release = threading.Event()

    def receiver(event: str, payload: Any) -> None:
        current().set_status("crunching", 40)
        release.wait(10)

    bus.listen("x", receiver)
    queue = make_queue()
    msg_id = queue.send("x", 1)
    run = start_worker(queue, bus, keep_alive=0.3)
    entry = wait_for(lambda: [w for w in workers(url) if w.get("message_status") == "crunching"])[0]
    assert entry["status"] == "processing"
    assert entry["message"] == msg_id
    assert entry["percent"] == 40
    assert entry["queues"] == ["jobs"]
    assert entry["pid"] > 0
    assert queue.stats()["statuses"] == {msg_id: {"status": "crunching", "percent": 40.0}}
    release.set()
    wait_for(lambda: [w for w in workers(url) if w["status"] == "idle"])
    run.stop()
    assert workers(url) == []


def test_stale_heartbeats_are_pruned(url: str, raw: redis.Redis) -> None:
    raw.hset("zevents:workers", "ghost", b'{"host":"h","pid":1,"beat":1,"expires":2}')
    assert workers(url) == []
    assert raw.hlen("zevents:workers") == 0


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_slow_receiver_keeps_its_lease_while_another_worker_waits(
    make_queue: MakeQueue, start_worker: StartWorker, driver: str
) -> None:
    bus = Bus()
    calls: list[str] = []

    def slow(event: str, payload: Any) -> None:
        calls.append(threading.current_thread().name)
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            current().touch()
            time.sleep(0.05)

    bus.listen("x", slow)
    make_queue(driver=driver).send("x", 1)
    start_worker(make_queue(driver=driver, consumer="w1"), bus, keep_alive=0.3)
    start_worker(make_queue(driver=driver, consumer="w2"), bus, keep_alive=0.3)
    queue = make_queue(driver=driver)
    # A stolen lease would start a second call while the first runs, keeping
    # "processing" above zero until that call ends too.
    wait_for(lambda: calls and queue.stats()["processing"] == 0, timeout=10)
    assert len(calls) == 1


@pytest.mark.parametrize("driver", DRIVERS)
def test_touch_extends_the_lease_and_fails_once_the_lease_is_lost(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver, consumer="a")
    queue.send("x", 1)
    taken = queue.consumer(lease=0.2, serve=[0]).take(1)[0]
    message = queue.consumer(lease=5.0).decode(taken)
    message.touch()
    if driver != "stream":
        deadline = raw.zscore(queue.keys.key("processing"), taken.id)
        assert deadline is not None
        assert deadline - raw.time()[0] * 1000 > 3000
        raw.zadd(queue.keys.key("processing"), {taken.id: 0})  # expire it
        queue.consumer(lease=0, serve=[0]).reclaim(5)
    else:
        make_queue(driver=driver, consumer="b").consumer(lease=0, serve=[0]).reclaim(5)
    with pytest.raises(QueueError, match="no longer leased"):
        message.touch()
    assert queue.consumer().ack([taken]) == [taken.id]


def test_worker_rides_out_a_redis_restart(
    start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer().start()
    port = server.port
    bus = Bus()
    seen: list[int] = []
    bus.listen("x", lambda e, p: seen.append(p))
    try:
        queue = RedisQueue("jobs", server.url, socket_timeout=1)
        run = start_worker(queue, bus, keep_alive=1)
        queue.send("x", 1)
        wait_for(lambda: seen == [1])
        server.stop()
        wait_for(lambda: "unavailable" in caplog.text, timeout=10)
        server = RedisServer(port=port).start()
        with RedisQueue("jobs", server.url) as sender:
            sender.send("x", 2)
        wait_for(lambda: seen == [1, 2], timeout=20)
        run.stop()
    finally:
        queue.close()
        server.stop()


def test_a_running_worker_prunes_stale_heartbeats_of_others(
    url: str, raw: redis.Redis, make_queue: MakeQueue, start_worker: StartWorker
) -> None:
    raw.hset("zevents:workers", "ghost", b'{"host":"h","pid":1,"beat":1,"expires":2}')
    start_worker(make_queue(), Bus(), keep_alive=0.3)
    wait_for(
        lambda: raw.hlen("zevents:workers") == 1 and not raw.hexists("zevents:workers", "ghost")
    )


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_a_redis_crash_and_restart_loses_no_accepted_message(
    start_worker: StartWorker, driver: str
) -> None:
    from zevents.errors import QueueUnavailable

    server = RedisServer(persistent=True).start()
    queues: list[RedisQueue] = []
    try:
        queue = RedisQueue("jobs", server.url, driver=driver, socket_timeout=1)
        sender = RedisQueue("jobs", server.url, driver=driver, socket_timeout=1)
        queues += [queue, sender]
        seen: set[int] = set()
        bus = Bus()

        def slow_add(event: str, payload: int) -> None:
            time.sleep(0.002)
            seen.add(payload)

        bus.listen("x", slow_add)
        start_worker(queue, bus, keep_alive=1)
        accepted = [sender.send("x", i) and i for i in range(300)]
        wait_for(lambda: len(seen) > 20)
        server.restart(hard=True)  # kill -9 mid-batch; the append-only file survives
        for i in range(300, 400):
            try:
                sender.send("x", i)
            except QueueUnavailable:
                continue
            accepted.append(i)
        wait_for(lambda: set(accepted) <= seen, timeout=30)
        wait_for(lambda: queue.stats()["processing"] == 0, timeout=10)
        assert queue.failed() == []
    finally:
        for q in queues:
            q.close()
        server.stop()


@pytest.mark.parametrize("outcome", ["returns", "raises"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_worker_finishing_after_its_lease_was_taken_over_changes_nothing(
    make_queue: MakeQueue,
    start_worker: StartWorker,
    raw: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    driver: str,
    outcome: str,
) -> None:
    from zevents.redis import RetryPolicy

    queue = make_queue(driver=driver, consumer="late")
    msg_id = queue.send("x", 1, identifier="i")
    entered, release = threading.Event(), threading.Event()

    def slow(event: str, payload: Any) -> None:
        entered.set()
        release.wait(10)
        if outcome == "raises":
            raise ValueError("late failure")

    bus = Bus()
    bus.listen("x", slow)
    start_worker(queue, bus, keep_alive=5, retry=RetryPolicy(max_attempts=1))
    wait_for(entered.is_set)
    rescuer = make_queue(driver=driver, consumer="rescuer")
    taken: list[Taken]
    if driver == "stream":
        taken = rescuer.consumer(lease=0, serve=[0]).reclaim(5)  # as if idle past the lease
    else:
        raw.zadd(queue.keys.key("processing"), {msg_id: 0})  # the lease expired
        rescuer.consumer(lease=30.0, serve=[0]).reclaim(5)
        taken = rescuer.consumer(lease=30.0, serve=[0]).take(1)
    assert [(t.id, t.attempt) for t in taken] == [(msg_id, 2)]
    release.set()
    late = "before acknowledgement" if outcome == "returns" else "not storing it as failed"
    wait_for(lambda: late in caplog.text)
    stats = queue.stats()
    assert (stats["processing"], stats["delayed"], stats["failed"]) == (1, 0, 0)
    assert queue.unfinished(["i"]) == {"i"}  # the rescuer still holds it
    assert rescuer.consumer().ack(taken) == []
    assert queue.unfinished(["i"]) == set()
    assert queue.stats()["processing"] == 0
