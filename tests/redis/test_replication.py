"""``min_replicas``: sends confirmed only once Redis ``WAIT`` says replicas have them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from zevents.errors import ConfigError, QueueUnavailable, ReplicationError
from zevents.redis import RedisQueue
from zevents.redis.protocol.steps import Batch, Call, Plan, Wait, step_replies
from zevents.redis.replication import Replication, replicated


def two_steps() -> Plan[list[Any]]:
    first = yield Call("a.lua", ["k"], [])
    second = yield Batch([Call("b.lua", ["k"], []), Call("c.lua", ["k"], [])])
    return [first, second]


def test_replicated_runs_the_plan_then_one_wait_and_checks_its_reply() -> None:
    plan = replicated(two_steps(), Replication(2, 0.25), "{q}:replicated", "send to 'q'")
    assert next(plan) == Call("a.lua", ["k"], [])
    step = plan.send("one")
    assert step == Batch([Call("b.lua", ["k"], []), Call("c.lua", ["k"], [])])
    assert plan.send(["b", "c"]) == Batch([Wait(2, 250, "{q}:replicated")])
    with pytest.raises(StopIteration) as done:
        plan.send([2])
    assert done.value.value == ["one", ["b", "c"]]


def test_too_few_replicas_raise_a_replication_error_naming_the_counts() -> None:
    plan = replicated(two_steps(), Replication(2), "{q}:replicated", "send to 'q'")
    next(plan)
    plan.send("one")
    plan.send(["b", "c"])
    with pytest.raises(ReplicationError, match="1 of 2 replica") as raised:
        plan.send([1])
    assert (raised.value.acknowledged, raised.value.wanted) == (1, 2)


def test_no_replicas_asked_leaves_the_plan_as_it_is() -> None:
    plan = replicated(two_steps(), Replication(0), "{q}:replicated", "send")
    assert next(plan) == Call("a.lua", ["k"], [])
    plan.send("one")
    with pytest.raises(StopIteration) as done:
        plan.send(["b", "c"])
    assert done.value.value == ["one", ["b", "c"]]


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": True}, "min_replicas"),
        ({"min_replicas": 1.5}, "min_replicas"),
        ({"replica_timeout": 0}, "replica_timeout"),
        ({"replica_timeout": "1"}, "replica_timeout"),
        # WAIT may block as long as a read may: its answer would come too late
        ({"min_replicas": 1, "replica_timeout": 2, "socket_timeout": 2}, "replica_timeout"),
    ],
)
def test_bad_replication_options_fail_at_construction(
    url: str, options: dict[str, Any], option: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        RedisQueue("jobs", url, **options)
    assert raised.value.option == option


def test_a_server_without_replicas_refuses_sends_that_ask_for_one(
    make_queue: Callable[..., RedisQueue],
) -> None:
    """The write is on the master, but the send says it is not confirmed, within the
    replica timeout; without min_replicas the master's word is enough."""
    queue = make_queue("repl", min_replicas=1, replica_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(ReplicationError) as raised:
        queue.send("x", 1)
    assert time.monotonic() - started < 2
    assert isinstance(raised.value, QueueUnavailable)
    assert (raised.value.acknowledged, raised.value.wanted) == (0, 1)
    with pytest.raises(ReplicationError):
        queue.send_many([("x", n) for n in range(2500)])
    assert queue.send("x", 2, min_replicas=0)
    assert queue.stats()["ready"] == {0: 2502}
    plain = make_queue("repl")
    assert plain.send_many([("x", 3)], min_replicas=0)
    with pytest.raises(ReplicationError):
        plain.send("x", 4, min_replicas=1)


def test_step_replies_drop_the_marker_write_of_each_wait() -> None:
    steps: list[Call | Wait] = [Call("a.lua", ["k"], []), Wait(1, 100, "{q}:replicated")]
    assert step_replies(steps, ["id", 7, 1]) == ["id", 1]
    wrong = ValueError("WRONGTYPE")
    assert step_replies(steps, ["id", wrong, 1]) == ["id", wrong]  # no write, no confirmation


@pytest.mark.parametrize("driver", ["list", "set"])
def test_a_send_that_matches_a_stored_message_still_waits_on_a_write_of_its_own(
    make_queue: Callable[..., RedisQueue], raw: Any, driver: str
) -> None:
    """A unique send that finds its message already there writes nothing itself; the
    marker write makes WAIT cover it (since Redis 7 WAIT counts only the connection's
    own last write), so it is not confirmed while no replica has anything."""
    queue = make_queue(f"repl-{driver}", driver=driver, min_replicas=1, replica_timeout=0.05)
    marker = queue.keys.key("replicated")
    written = []
    for _ in range(2):
        with pytest.raises(ReplicationError):
            queue.send("x", {"same": True}, identifier="one", unique=True)
        written.append(int(raw.get(marker)))
    assert written == [1, 2]  # the second send, which matched, wrote the marker too
    assert sum(queue.stats()["ready"].values()) == 1


def test_a_sends_own_min_replicas_is_checked_against_the_socket_timeout(
    make_queue: Callable[..., RedisQueue],
) -> None:
    """WAIT may not block as long as a read may: a send's own ``min_replicas`` is refused
    as the queue's would be (``replica_timeout`` 1 s against a 0.5 s socket timeout)."""
    queue = make_queue("own-check", socket_timeout=0.5)
    for send in (
        lambda: queue.send("x", 1, min_replicas=1),
        lambda: queue.send_many([("x", 2)], min_replicas=1),
    ):
        with pytest.raises(ConfigError) as raised:
            send()
        assert raised.value.option == "replica_timeout"
    assert queue.send("x", 3)
    assert queue.stats()["ready"] == {0: 1}


def test_retry_failed_with_nothing_to_retry_waits_for_no_replica(
    make_queue: Callable[..., RedisQueue],
) -> None:
    """Nothing selected, nothing written: no WAIT, so no ReplicationError on a server
    without replicas, and 0 retried."""
    queue = make_queue("nothing-failed", min_replicas=1, replica_timeout=0.1)
    assert queue.retry_failed() == 0
    assert queue.retry_failed(event="none.*") == 0
