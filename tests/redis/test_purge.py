"""``RedisQueue.purge``: old acknowledged messages go; with force, unacknowledged too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from tests.redis.old_messages import (
    HOUR_MS,
    LONG_AGO_MS,
    entries,
    make_old,
    read_as,
    send_old,
    stored_ids,
)
from zevents.errors import ConfigError, QueueNotFound
from zevents.redis import PurgeResult, RedisQueue
from zevents.redis.message import failure_record

MakeQueue = Callable[..., RedisQueue]
CORE = ["list", "sorted-set", "set"]


@pytest.mark.parametrize("driver", CORE)
def test_drivers_that_delete_on_acknowledgement_purge_nothing_without_force(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver)
    ids = [queue.send("job", n) for n in range(3)]
    for message_id in ids:
        make_old(raw, queue, message_id, LONG_AGO_MS)
    consumer = queue.consumer(lease=30.0)
    assert consumer.ack(consumer.take(1)) == []
    result = queue.purge("1 day")
    assert result == PurgeResult(acknowledged=0, unacknowledged=0, keeps_acknowledged=False)
    assert result.removed == 0
    assert sum(queue.stats()["ready"].values()) == 2


@pytest.mark.parametrize("driver", CORE)
def test_force_deletes_old_ready_and_delayed_messages_and_counts_them(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    """Old ready and delayed messages go, bodies and identifiers with them; a message a
    worker holds, a failed one and a recent one stay."""
    queue = make_queue(driver=driver)
    ready = [queue.send("job", n, identifier=f"job-{n}") for n in range(3)]
    delayed = [] if driver == "set" else [queue.send("job", "later", delay=600)]
    held = queue.send("job", "held")
    failed = queue.send("job", "failed")
    for message_id in [*ready, *delayed, held, failed]:
        make_old(raw, queue, message_id, LONG_AGO_MS)
    recent = queue.send("job", "recent")
    consumer = queue.consumer(lease=30.0)
    taken = {t.id: t for t in consumer.take(10)}
    for message_id in ready:
        consumer.release([taken.pop(message_id)])
    consumer.release([taken.pop(recent)])
    record = failure_record("ValueError: no", None, 1, "attempts")
    assert consumer.fail(taken.pop(failed), record)
    assert list(taken) == [held]

    result = queue.purge("1 day", force=True)

    assert result.unacknowledged == len(ready) + len(delayed)
    assert (result.acknowledged, result.keeps_acknowledged) == (0, False)
    assert stored_ids(raw, queue) == {held, failed, recent}
    stats = queue.stats()
    assert (sum(stats["ready"].values()), stats["delayed"], stats["processing"]) == (1, 0, 1)
    assert stats["failed"] == 1
    assert queue.unfinished([f"job-{n}" for n in range(3)]) == set()


@pytest.mark.parametrize("driver", ["list", "sorted-set"])
def test_purging_the_head_of_a_serial_group_lets_the_next_one_run(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver)
    head = queue.send("step", "first", serial_group="account-1")
    queue.send("step", "second", serial_group="account-1")
    make_old(raw, queue, head, LONG_AGO_MS)
    assert queue.purge("1 day", force=True).unacknowledged == 1
    consumer = queue.consumer(lease=30.0)
    assert [consumer.decode(t).payload for t in consumer.take(10)] == ["second"]


def _stream_with_two_groups(
    make_queue: MakeQueue, raw: redis.Redis
) -> tuple[RedisQueue, list[str], list[str]]:
    """A stream queue read by groups ``default`` and ``audit``: three old entries and
    two recent ones, all acknowledged by ``default``; ``audit`` (another program) has
    acknowledged the first old entry, holds the second pending, never read the rest."""
    queue = make_queue("history", driver="stream")
    make_queue("history", driver="stream", group="audit")
    old = [send_old(raw, queue, "job", n, LONG_AGO_MS + n) for n in range(3)]
    recent = [queue.send("job", n) for n in (3, 4)]
    consumer = queue.consumer(lease=30.0)
    assert consumer.ack(consumer.take(10)) == []
    key = queue.keys.ready(0)
    raw.xack(key, "audit", read_as(raw, key, "audit", 2)[0])
    return queue, old, recent


def test_stream_purge_deletes_old_entries_every_group_acknowledged(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    queue, old, _ = _stream_with_two_groups(make_queue, raw)
    key = queue.keys.ready(0)
    result = queue.purge("1 day")
    assert result == PurgeResult(acknowledged=1, unacknowledged=0, keeps_acknowledged=True)
    left = [fields[b"i"].decode() for _, fields in entries(raw, key)]
    assert left[:2] == old[1:]
    assert queue.purge("1 day").removed == 0


def test_stream_purge_with_force_deletes_pending_and_undelivered_old_entries(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    queue, _, recent = _stream_with_two_groups(make_queue, raw)
    key = queue.keys.ready(0)
    result = queue.purge("1 day", force=True)
    assert (result.acknowledged, result.unacknowledged) == (1, 2)
    assert [fields[b"i"].decode() for _, fields in entries(raw, key)] == recent
    assert raw.xpending(key, "audit")["pending"] == 0  # no ghost of a deleted entry


def test_stream_purge_keeps_entries_younger_than_the_bound(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    queue = make_queue(driver="stream")
    send_old(raw, queue, "job", "old", LONG_AGO_MS)
    send_old(raw, queue, "job", "younger", LONG_AGO_MS + 10 * HOUR_MS)
    now_ms = int(raw.time()[0]) * 1000
    hours = (now_ms - LONG_AGO_MS) / HOUR_MS - 5  # between the two
    assert queue.purge(f"{hours:.3f}h", force=True).unacknowledged == 1
    ((_, fields),) = entries(raw, queue.keys.ready(0))
    assert b"younger" in fields[b"m"]


def test_stream_purge_with_force_releases_identifiers_and_delayed_retries(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    queue = make_queue(driver="stream")
    queue.send("job", "x", identifier="order-1")
    queue.send("job", "later", delay=600, identifier="order-2")
    for member in stored_ids(raw, queue):
        make_old(raw, queue, member, LONG_AGO_MS)
    assert queue.unfinished(["order-1", "order-2"]) == {"order-1", "order-2"}
    result = queue.purge("0s", force=True)
    assert result.unacknowledged == 2
    assert queue.unfinished(["order-1", "order-2"]) == set()
    assert queue.stats()["delayed"] == 0


def test_purge_of_a_queue_never_used_is_not_found(make_queue: MakeQueue) -> None:
    with pytest.raises(QueueNotFound):
        make_queue("nothing-here").purge("1 day")


def test_purge_checks_its_duration_first(make_queue: MakeQueue) -> None:
    with pytest.raises(ConfigError, match="not a duration") as info:
        make_queue().purge("yesterday")
    assert info.value.option == "older_than"
