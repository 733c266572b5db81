"""Round trips sent ahead: ``Runner.begin`` on a real server, and a worker that takes its
next batch while it works the one in hand (``zevents.redis._rounds``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis

from tests.redis.conftest import DRIVERS, Running, wait_for
from zevents.errors import QueueUnavailable
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RedisServer
from zevents.redis._client import Runner, connect
from zevents.redis._rounds import Rounds
from zevents.redis._state import WorkerState
from zevents.redis.message import Taken
from zevents.redis.protocol import Batch, Call, Command, Plan

MakeQueue = Callable[..., RedisQueue]
StartWorker = Callable[..., Running]


def two_rounds(key: str) -> Plan[tuple[Any, Any]]:
    """A first step of scripts only (sent ahead), then a command."""
    first = yield Batch([Call("queue_meta.lua", [key], ["check"]), Command("ping", ())])
    second = yield Command("get", (key,))
    return first, second


def one_command(key: str) -> Plan[Any]:
    return (yield Command("incr", (key,)))


@pytest.fixture
def runner(url: str) -> Any:
    client = connect(url)
    yield Runner(client, url)
    client.close()


def test_begin_runs_a_command_plan_in_finish_not_before(runner: Runner, raw: redis.Redis) -> None:
    begun = runner.begin(one_command("n"), "count")
    assert raw.get("n") is None  # a plan that starts with a command is not sent ahead
    assert begun.finish() == 1
    assert raw.get("n") == b"1"


def test_begin_sends_script_calls_ahead_and_finish_reads_them(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    queue = make_queue(driver="list")
    ids = [queue.send("x", n) for n in range(5)]
    consumer = queue.consumer(lease=30.0)
    assert [t.id for t in consumer.take(1)] == ids[:1]  # Redis now knows the script
    begun = consumer.begin_ack_and_take([], None, 3)
    # Sent: Redis took them before anyone read the reply.
    wait_for(lambda: queue.stats()["processing"] == 4)
    lost, taken = begun.finish()
    assert (lost, [t.id for t in taken]) == ([], ids[1:4])
    # The connection went back to the pool: the client still works.
    assert [t.id for t in consumer.take(5)] == ids[4:]


def test_finish_loads_scripts_redis_forgot(make_queue: MakeQueue, raw: redis.Redis) -> None:
    queue = make_queue(driver="list")
    first = queue.send("x", 1)
    consumer = queue.consumer(lease=30.0)
    raw.script_flush()
    lost, taken = consumer.begin_ack_and_take([], None, 10).finish()
    assert (lost, [t.id for t in taken]) == ([], [first])


def test_a_round_sent_to_a_server_gone_is_unavailable_and_the_pool_recovers() -> None:
    with (
        RedisServer() as server,
        RedisQueue("gone", server.url, driver="list", socket_timeout=2.0) as queue,
    ):
        queue.send("x", 1)
        consumer = queue.consumer(lease=30.0)
        server.kill(hard=True)
        with pytest.raises(QueueUnavailable):
            consumer.begin_ack_and_take([], None, 10).finish()
        server.start()
        wait_for(lambda: _answers(server.url))
        again = queue.send("x", 2)  # the data went with the server; the client works
        lost, taken = consumer.begin_ack_and_take([], None, 10).finish()
        assert (lost, [t.id for t in taken]) == ([], [again])


def _answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=1.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# --- Rounds: the worker's round trips ---------------------------------------------------


def _rounds(queue: RedisQueue, lease: float = 30.0) -> tuple[Rounds, WorkerState]:
    state = WorkerState("w", [queue.name])
    consumer = queue.consumer(lease=lease)
    return Rounds("w", [consumer], state, lease), state


def _finish_all(rounds: Rounds, state: WorkerState, batch: list[Taken]) -> None:
    state.add(0, batch)
    for taken in batch:
        state.start(0, taken)
        state.finish(0, rounds.consumers[0].decode(taken))


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_round_sent_ahead_acknowledges_the_last_batch_and_takes_the_next(
    make_queue: MakeQueue, driver: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue(driver=driver)
    queue.send_many([("x", n) for n in range(10)])
    rounds, state = _rounds(queue)
    first = rounds.next(4)
    assert first is not None
    assert len(first[1]) == 4
    _finish_all(rounds, state, first[1])
    rounds.send_ahead(4)
    assert rounds.pending
    # A flush meanwhile reads the round sent ahead first: nothing is acknowledged twice.
    with caplog.at_level(logging.WARNING):
        assert rounds.flush(0) == []
    assert not [r for r in caplog.records if "lease lost" in r.getMessage()]
    second = rounds.next(4)
    assert second is not None
    assert len(second[1]) == 4
    assert {t.id for t in second[1]}.isdisjoint(t.id for t in first[1])
    assert state.held(0) == second[1]  # renewed by the heartbeat until worked
    assert queue.stats()["processing"] == 4
    assert sum(queue.stats()["ready"].values()) == 2


def test_a_batch_taken_ahead_whose_leases_expired_is_left_to_their_new_holder(
    make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue(driver="list")
    queue.send_many([("x", n) for n in range(3)])
    rounds, state = _rounds(queue, lease=0.2)
    rounds.send_ahead(3)
    other = queue.consumer(lease=30.0)

    def taken_over() -> list[Taken]:
        other.reclaim(5)
        return other.take(3)

    rescued = wait_for(taken_over, timeout=10)
    with caplog.at_level(logging.WARNING):
        assert rounds.next(3) is None
    assert "taken ahead" in caplog.text
    assert state.held(0) == []
    assert len(rescued) == 3
    assert queue.stats()["processing"] == 3  # the new holder's, untouched


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_a_worker_stopped_mid_queue_gives_back_what_it_took_ahead(
    make_queue: MakeQueue, driver: str
) -> None:
    queue = make_queue(driver=driver)
    queue.send_many([("x", n) for n in range(3000)])
    bus = Bus()
    seen: list[int] = []
    from zevents.redis import Worker

    worker = Worker(queue, bus)

    def receiver(event: str, payload: Any) -> None:
        seen.append(payload)
        if len(seen) == 1500:
            assert worker._rounds.pending  # quick messages: the next batch is on its way
            worker.stop()

    bus.listen("x", receiver)
    assert worker.run() == 1500
    stats = queue.stats()
    # Given back: in line again (a stream keeps them pending, idle past the lease, for
    # the next worker's first reclaim).
    assert stats["processing"] + sum(stats["ready"].values()) == 1500
    if driver == "list":
        assert stats["processing"] == 0
    rest: list[int] = []
    bus2 = Bus()
    bus2.listen("x", lambda e, p: rest.append(p))
    # A short lease: a stream worker reclaims a bounded count each half lease.
    Worker(queue, bus2, max_messages=1500, keep_alive=2.0).run()
    assert sorted(seen + rest) == list(range(3000))  # each exactly once


@pytest.mark.parametrize("driver", ["list", "sorted-set", "set"])
def test_the_lease_keys_keep_the_encoding_of_large_ones(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    """A small hash or sorted set (ziplist, listpack) scans every entry per field: with
    two batches in flight a take would cost the square of the messages held."""
    queue = make_queue(driver=driver)
    queue.send_many([("x", n) for n in range(3)])
    consumer = queue.consumer(lease=30.0)
    taken = consumer.take(2)
    parts = ("leases", "attempts", "processing")
    encodings = {part: raw.object("encoding", queue.keys.key(part)) for part in parts}
    assert encodings == {
        "leases": b"hashtable",
        "attempts": b"hashtable",
        "processing": b"skiplist",
    }
    assert consumer.ack([consumer.decode(t) for t in taken]) == []
    again = consumer.take(5)
    assert [t.attempt for t in again] == [1]  # the extra field is no message
    assert queue.stats()["processing"] == 1  # the extra member is no lease
    consumer.reclaim(5)  # the member's deadline never comes: nothing goes back in line
    assert sum(queue.stats()["ready"].values()) == 0


def test_an_argument_redis_cannot_take_is_refused_as_redis_py_refuses_it() -> None:
    from zevents.redis._client import packed_commands

    with pytest.raises(redis.DataError):
        packed_commands(None, [("SET", "k", True)])
