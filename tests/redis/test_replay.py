"""``RedisQueue.replay`` and ``history``: an identifier's messages, from the queue and the
archive, merged oldest first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
import redis

from tests.redis.conftest import DRIVERS
from tests.redis.old_messages import HOUR_MS, LONG_AGO_MS, send_old
from zevents.redis import HistoryEntry, JsonLinesArchive, RedisQueue
from zevents.redis.message import failure_record
from zevents.redis.replay import merge_payloads

MakeQueue = Callable[..., RedisQueue]


@pytest.mark.parametrize("driver", DRIVERS)
def test_replay_merges_the_payloads_of_an_identifier_oldest_first(
    make_queue: MakeQueue, tmp_path: Path, driver: str
) -> None:
    queue = make_queue(driver=driver)
    queue.send("order.created", {"status": "created", "total": 30}, identifier="order-7")
    queue.send("order.created", {"status": "created"}, identifier="order-8")
    queue.send("order.paid", {"status": "paid", "paid_by": "card"}, identifier="order-7")
    queue.send("order.shipped", {"status": "shipped", "total": 32}, identifier="order-7")
    store = JsonLinesArchive(tmp_path)
    state = queue.replay("order-7", store=store)
    if driver == "set":  # no order within one millisecond: only the keys are certain
        assert set(state) == {"status", "total", "paid_by"}
    else:
        assert state == {"status": "shipped", "total": 32, "paid_by": "card"}
    entries = queue.history("order-7", store=store)
    assert [e.source for e in entries] == ["queue"] * 3
    assert queue.replay("order-8", store=store) == {"status": "created"}
    assert queue.replay("order-9", store=store) == {}


@pytest.mark.parametrize("driver", DRIVERS)
def test_replay_until_takes_only_messages_sent_at_or_before_it(
    make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path, driver: str
) -> None:
    queue = make_queue(driver=driver)
    steps = [{"step": "created", "a": 1}, {"step": "paid", "b": 2}, {"step": "shipped"}]
    for hour, payload in enumerate(steps):
        send_old(raw, queue, "order", payload, LONG_AGO_MS + hour * HOUR_MS, identifier="o-1")
    store = JsonLinesArchive(tmp_path)
    assert queue.replay("o-1", store=store) == {"step": "shipped", "a": 1, "b": 2}
    assert queue.replay("o-1", until="2026-01-01T11:00:00Z", store=store) == {
        "step": "paid",
        "a": 1,
        "b": 2,
    }
    ten_thirty = datetime(2026, 1, 1, 10, 30, tzinfo=timezone.utc)
    assert queue.replay("o-1", until=ten_thirty, store=store) == {"step": "created", "a": 1}
    assert queue.replay("o-1", until=(LONG_AGO_MS - 1) / 1000, store=store) == {}
    times = [e.enqueued_at for e in queue.history("o-1", until="2026-01-01", store=store)]
    assert times == [(LONG_AGO_MS + h * HOUR_MS) / 1000 for h in range(3)]


@pytest.mark.parametrize("driver", ["list", "sorted-set", "stream"])
def test_replay_reads_the_archive_and_messages_in_every_state(
    make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path, driver: str
) -> None:
    """Archived, delayed, processing and failed messages all count, each once."""
    queue = make_queue(driver=driver)
    send_old(raw, queue, "order", {"archived": True, "step": 1}, LONG_AGO_MS, identifier="o")
    store = JsonLinesArchive(tmp_path)
    assert queue.archive("1 day", force=True, store=store).removed == 1
    queue.send("order", {"failed": True, "step": 2}, identifier="o")
    queue.send("order", {"processing": True, "step": 3}, identifier="o")
    consumer = queue.consumer(lease=30.0)
    failing, _ = consumer.take(2)
    assert consumer.fail(failing, failure_record("ValueError: no", None, 1, "attempts"))
    queue.send("order", {"delayed": True, "step": 4}, identifier="o", delay=600)
    entries = queue.history("o", store=store)
    assert [e.source for e in entries] == ["archive", "queue", "queue", "queue"]
    assert queue.replay("o", store=store) == {
        "archived": True,
        "failed": True,
        "processing": True,
        "delayed": True,
        "step": 4,
    }


def test_a_restored_message_replays_in_its_original_place(
    make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path
) -> None:
    queue = make_queue()
    send_old(raw, queue, "order", {"step": "created"}, LONG_AGO_MS, identifier="o")
    send_old(raw, queue, "order", {"step": "paid"}, LONG_AGO_MS + HOUR_MS, identifier="o")
    store = JsonLinesArchive(tmp_path)
    queue.archive("1 day", force=True, store=store)
    queue.send("order", {"step": "shipped"}, identifier="o")
    paid = next(r for r in store.read(queue.name) if r.body["payload"]["step"] == "paid")
    queue.restore([paid.id], store=store)
    entries = queue.history("o", store=store)
    assert [e.payload["step"] for e in entries] == ["created", "paid", "shipped"]
    assert [e.source for e in entries] == ["archive", "queue", "queue"]
    assert entries[1].enqueued_at == (LONG_AGO_MS + HOUR_MS) / 1000


def _entry(payload: object) -> HistoryEntry:
    return HistoryEntry("1-1", "e", payload, None, "queue")


def test_a_payload_that_is_not_a_dict_replaces_the_state() -> None:
    entries = [_entry({"a": 1}), _entry(["a", "list"]), _entry({"b": 2}), _entry({"c": 3})]
    assert merge_payloads(entries[:2]) == ["a", "list"]
    assert merge_payloads(entries) == {"b": 2, "c": 3}
    assert merge_payloads([_entry({"a": 1}), _entry(None)]) is None
    assert merge_payloads([]) == {}
