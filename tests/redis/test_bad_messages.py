"""Messages written by hand into every driver's keys, wrong in each way a foreign or
broken producer can get them wrong: each goes to the failed store with a clear reason,
and the worker goes on with the good ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.redis.conftest import DRIVERS, Running, wait_for
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RetryPolicy

MakeQueue = Callable[..., RedisQueue]
StartWorker = Callable[..., Running]

#: Bodies that are not messages, by what is wrong, with the start of the error each
#: gets in the failed store.
BAD_BODIES = {
    "no-event": (b'{"payload": 1}', "DecodeError: message body is not a JSON object"),
    "event-not-a-string": (b'{"event": 5}', "DecodeError: message body is not a JSON object"),
    "not-an-object": (b'["x", 1]', "DecodeError: message body is not a JSON object"),
    "not-json": (b"{oops", "DecodeError: message body is not valid JSON"),
    "not-utf8": (b'{"event": "\xff"}', "DecodeError: message body is not valid JSON"),
}


def _put(raw: redis.Redis, queue: RedisQueue, driver: str, ident: str, body: bytes) -> None:
    """Write ``body`` under ``ident`` the way the driver stores a ready message."""
    ready = queue.keys.ready(0)
    if driver == "stream":
        raw.xadd(ready, {"i": ident, "m": body})
        return
    raw.hset(queue.keys.key("msgs"), ident, body)
    if driver == "list":
        raw.rpush(ready, ident)
    elif driver == "sorted-set":
        raw.zadd(ready, {ident: 0})
    else:
        raw.sadd(ready, ident)


def _work(queue: RedisQueue, start_worker: StartWorker, count: int, **options: Any) -> list[Any]:
    """Run a worker until ``count`` good messages were handled; their payloads."""
    bus = Bus()
    seen: list[Any] = []
    bus.listen("good", lambda event, payload: seen.append(payload))
    start_worker(queue, bus, **options)
    wait_for(lambda: len(seen) >= count, what=f"{count} good message(s)")
    return seen


@pytest.mark.parametrize("driver", DRIVERS)
def test_each_malformed_body_is_failed_with_its_reason_and_the_rest_is_handled(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver)
    for name, (body, _) in BAD_BODIES.items():
        _put(raw, queue, driver, f"bad-{name}", body)
        queue.send("good", name)
    seen = _work(queue, start_worker, len(BAD_BODIES))
    assert sorted(seen) == sorted(BAD_BODIES)
    failed = wait_for(lambda: len(queue.failed()) == len(BAD_BODIES) and queue.failed())
    # (a stream queue's failed store keys each message by "ID|GROUP")
    by_id = {entry.id.partition("|")[0]: entry for entry in failed}
    for name, (_, error) in BAD_BODIES.items():
        entry = by_id[f"bad-{name}"]
        assert entry.error.startswith(error), (name, entry.error)
        assert entry.reason == "undecodable"
    stats = queue.stats()
    assert stats["processing"] == 0
    assert sum(stats["ready"].values()) == 0


@pytest.mark.parametrize("driver", ["list", "sorted-set", "set"])
def test_an_id_with_no_body_is_failed_and_the_worker_goes_on(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver)
    ready = queue.keys.ready(0)
    if driver == "list":
        raw.rpush(ready, "ghost")
    elif driver == "sorted-set":
        raw.zadd(ready, {"ghost": 0})
    else:
        raw.sadd(ready, "ghost")
    queue.send("good", 1)
    assert _work(queue, start_worker, 1) == [1]
    failed = wait_for(lambda: queue.failed())
    assert [(entry.id, entry.reason) for entry in failed] == [("ghost", "undecodable")]
    assert "no message body" in failed[0].error


def test_a_stream_entry_without_its_fields_is_failed_and_the_worker_goes_on(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis
) -> None:
    queue = make_queue(driver="stream")
    entry_id: Any = raw.xadd(queue.keys.ready(0), {"junk": "1"})
    queue.send("good", 1)
    assert _work(queue, start_worker, 1) == [1]
    failed = wait_for(lambda: queue.failed())
    assert len(failed) == 1
    assert failed[0].id == f"{entry_id.decode()}|{queue.group}"
    assert failed[0].reason == "undecodable"
    assert failed[0].error.startswith("DecodeError: ")
    assert queue.stats()["processing"] == 0


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_unknown_priority_fails_with_its_reason_when_it_must_go_back(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis, driver: str
) -> None:
    """A body naming a level the queue does not have is taken from where it lies; when
    its attempt fails it cannot go back to that level, so it goes to the failed store
    saying so (never lost, never retried at a level the workers do not serve)."""
    queue = make_queue(driver=driver, priorities=[10, 0], default_priority=0)
    _put(raw, queue, driver, "odd-1", b'{"event": "good", "payload": "odd", "priority": 7}')
    queue.send("good", "fine")
    bus = Bus()
    attempts: list[str] = []

    def fail_the_odd_one(event: str, payload: Any) -> None:
        attempts.append(payload)
        if payload == "odd":
            raise RuntimeError("this attempt fails")

    bus.listen("good", fail_the_odd_one)
    start_worker(queue, bus, retry=RetryPolicy(max_attempts=3, base=0.01))
    failed = wait_for(lambda: queue.failed(), what="the failed entry")
    assert sorted(attempts) == ["fine", "odd"]
    assert len(failed) == 1
    assert failed[0].id.partition("|")[0] == "odd-1"
    assert failed[0].reason == "undeliverable"
    assert failed[0].error.endswith("no ready key for priority 7")
    assert failed[0].payload == "odd"
    assert queue.stats()["processing"] == 0
