"""The batching bridge: ZeroMQ events into a Redis queue, confirmed once stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_tcp_port
from tests.helpers import wait_for
from zevents import DeliveryError, EventListener
from zevents.errors import ConfigError, QueueUnavailable
from zevents.eventbus import Bus
from zevents.events import PUSH_ERROR
from zevents.redis import Bridge, RedisQueue, RedisServer
from zevents.redis.message import BodyCodec

SCRIPT = Path(__file__).with_name("bridge_script.py")


class BridgeProcess:
    def __init__(self, url: str, queue: str, endpoint: str, directory: Path, *args: str):
        self.ready = directory / f"bridge-{os.urandom(4).hex()}.ready"
        self.log = directory / f"{self.ready.name}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(SCRIPT), url, queue, endpoint, str(self.ready), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: self.ready.exists() or self.proc.poll() is not None, what="bridge")
        assert self.proc.poll() is None, self.log.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)

    def text(self) -> str:
        return self.log.read_text()


@pytest.fixture
def start_bridge(short_tmp: Path) -> Iterator[Callable[..., BridgeProcess]]:
    started: list[BridgeProcess] = []

    def start(url: str, queue: str, endpoint: str, *args: str) -> BridgeProcess:
        bridge = BridgeProcess(url, queue, endpoint, short_tmp, *args)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        if bridge.proc.poll() is None:
            bridge.proc.kill()
        bridge.proc.wait(10)


def payloads(queue: RedisQueue) -> list[Any]:
    consumer = queue.consumer(lease=30.0)
    taken = consumer.take(100_000)
    return [BodyCodec().decode(t.body)["payload"] for t in taken]


def test_a_confirmed_window_is_stored_in_batches_and_in_order(
    url: str, short_tmp: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    endpoint = f"ipc://{short_tmp}/bridge.sock"
    bridge = start_bridge(url, "orders", endpoint, "--confirmed")
    listener = EventListener(connect=endpoint, confirmed=True, window=500, rcvtimeo=10_000)
    for i in range(3000):
        listener.send("orders.created", i)
    listener.flush()  # every one of them confirmed: stored
    listener.close()
    with RedisQueue("orders", url) as queue:
        assert payloads(queue) == list(range(3000))
    assert bridge.stop() == 0
    assert "bridge stopped after enqueueing 3000 event(s)" in bridge.text()


def test_only_matching_events_are_stored_and_a_remote_stop_stops_it(
    url: str, short_tmp: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    endpoint = f"ipc://{short_tmp}/filter.sock"
    bridge = start_bridge(url, "only", endpoint, "--confirmed", "--pattern", "orders.*")
    listener = EventListener(connect=endpoint, confirmed=True, rcvtimeo=5000)
    for event in ("orders.created", "users.created", "zevents.service.idle", "orders.paid"):
        listener.send(event, event)  # each confirmed (stored or deliberately skipped)
    listener.send("zevents.service.stop", None)
    listener.close()
    assert bridge.proc.wait(15) == 0
    with RedisQueue("only", url) as queue:
        assert payloads(queue) == ["orders.created", "orders.paid"]


def test_redis_down_confirms_nothing_and_logs_what_had_no_confirmation(
    short_tmp: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    server = RedisServer(persistent=True).start()
    try:
        endpoint = f"ipc://{short_tmp}/outage.sock"
        plain = f"ipc://{short_tmp}/outage-plain.sock"
        bridge = start_bridge(server.url, "jobs", endpoint, "--confirmed")
        plain_bridge = start_bridge(server.url, "jobs", plain)
        bus = Bus()
        errors: list[Any] = []
        bus.listen(PUSH_ERROR, lambda e, p: errors.append(p))
        sender = EventListener(connect=endpoint, confirmed=True, rcvtimeo=5000, bus=bus)
        sender.send("job", "before")
        server.kill()
        with pytest.raises(DeliveryError):
            sender.send("job", "during")  # refused: never a false confirmation
        unconfirmed = EventListener(connect=plain, linger=1000)
        unconfirmed.send("job", "lost-but-logged")
        unconfirmed.close()
        wait_for(lambda: "dropped 'job', received without confirmation" in plain_bridge.text())
        assert "WARNING" in bridge.text()
        server.start()
        wait_for(lambda: _confirmed(sender, "after"), timeout=20, what="bridge recovered")
        sender.close()
        with RedisQueue("jobs", server.url) as queue:
            stored = payloads(queue)
        assert "before" in stored
        assert "after" in stored
        assert "during" not in stored
        assert bridge.stop() == 0
        assert plain_bridge.stop() == 0
    finally:
        server.stop()


def _confirmed(sender: EventListener, payload: str) -> bool:
    try:
        sender.send("job", payload)
    except DeliveryError:
        return False
    return True


def test_a_priority_the_queue_cannot_take_is_refused_before_anything_is_received(
    make_queue: Callable[..., RedisQueue],
) -> None:
    queue = make_queue("levels", priorities=[10, 5, 1])
    with pytest.raises(ConfigError, match="priority 7") as info:
        Bridge(queue, priority=7)
    assert info.value.option == "priority"


def test_a_bridge_is_built_only_on_a_redis_that_answers_and_then_outlives_it(
    short_tmp: Path,
) -> None:
    """Redis is asked when the bridge is built; once built, Redis going away before
    run() stops nothing: the bridge receives, and logs what it could not store."""
    down = f"redis://127.0.0.1:{free_tcp_port()}/0"
    with RedisQueue("orders", down) as unreachable, pytest.raises(QueueUnavailable):
        Bridge(unreachable)
    server = RedisServer().start()
    queue = RedisQueue("orders", server.url, socket_timeout=1)
    try:
        queue.send("orders.before")  # a queue in use: its record is known already
        bridge = Bridge(queue, poll_timeout=0.05)
    finally:
        server.stop()
    with pytest.raises(QueueUnavailable):
        Bridge(queue)  # asked again, not taken from what the queue knew
    endpoint = f"ipc://{short_tmp}/bridge.sock"
    bridge.listen(EventListener(bind=endpoint))
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: bridge.is_running, what="the bridge to run")
        with EventListener(connect=endpoint, linger=1000) as listener:
            listener.send("orders.lost", {"id": 1})
        wait_for(lambda: bridge.dropped == 1, what="the event to be dropped")
        assert bridge.stored == 0
        assert thread.is_alive()
    finally:
        bridge.stop()
        thread.join(10)
        queue.close()
    assert not thread.is_alive()
