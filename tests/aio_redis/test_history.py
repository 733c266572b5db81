"""The asyncio queue's history: ``purge``, ``archive``, ``restore``, ``history`` and
``replay``, the sync queue's jobs awaited, with the archive's file I/O off the loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
import redis

from tests.aio_redis.conftest import DRIVERS, run
from tests.redis.old_messages import HOUR_MS, LONG_AGO_MS, TakingStore, read_as, send_old
from zevents.aio.redis import RedisQueue
from zevents.errors import ConfigError, QueueError, QueueNotFound
from zevents.redis import ArchivedMessage, JsonLinesArchive
from zevents.redis import RedisQueue as SyncQueue

UNREACHABLE = "redis://127.0.0.1:1/0"


def old_messages(url: str, raw: redis.Redis, driver: str, count: int = 3) -> None:
    """Three messages of queue ``jobs`` that look sent long ago, with identifiers."""
    with SyncQueue("jobs", url, driver=driver) as queue:
        for n in range(count):
            send_old(raw, queue, "order.step", {"n": n}, LONG_AGO_MS + n, identifier=f"o-{n}")


@pytest.mark.parametrize("driver", DRIVERS)
def test_archive_moves_old_messages_to_the_store_and_restore_puts_them_back(
    url: str, raw: redis.Redis, tmp_path: Path, driver: str
) -> None:
    old_messages(url, raw, driver)
    store = JsonLinesArchive(tmp_path)

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver=driver) as queue:
            result = await queue.archive("1 day", force=True, store=store)
            assert (result.acknowledged, result.unacknowledged) == (0, 3)
            records = store.read("jobs")
            assert sorted(r.body["payload"]["n"] for r in records) == [0, 1, 2]
            assert sum((await queue.stats())["ready"].values()) == 0

            first = min(records, key=lambda r: r.body["payload"]["n"])
            restored = await queue.restore([first.id], store=store)
            assert list(restored) == [first.id]
            assert sorted(r.body["payload"]["n"] for r in store.read("jobs")) == [1, 2]
            consumer = await queue.consumer(lease=30.0)
            (taken,) = await consumer.take(10)
            body = json.loads(taken.body)
            assert (taken.id, body["payload"], body["identifier"]) == (
                restored[first.id],
                {"n": 0},
                "o-0",
            )
            assert (body["original_id"], body["original_enqueued_at"]) == (first.id, LONG_AGO_MS)

            assert len(await queue.restore(store=store)) == 2
            assert store.read("jobs") == []
            assert sum((await queue.stats())["ready"].values()) == 2

    run(scenario())


@pytest.mark.parametrize("driver", ["list", "sorted-set", "set"])
def test_purge_without_force_deletes_nothing_where_acknowledging_deletes(
    url: str, raw: redis.Redis, driver: str
) -> None:
    old_messages(url, raw, driver)

    async def scenario() -> None:
        async with RedisQueue("jobs", url) as queue:
            kept = await queue.purge("1 day")
            assert (kept.removed, kept.keeps_acknowledged) == (0, False)
            forced = await queue.purge("1 day", force=True)
            assert (forced.acknowledged, forced.unacknowledged) == (0, 3)
            assert sum((await queue.stats())["ready"].values()) == 0

    run(scenario())


def test_stream_purge_deletes_old_entries_every_group_acknowledged(
    url: str, raw: redis.Redis
) -> None:
    old_messages(url, raw, "stream")

    async def scenario() -> None:
        # groups named here read the entries already in the stream
        async with (
            RedisQueue("jobs", url, driver="stream", group="default") as queue,
            RedisQueue("jobs", url, driver="stream", group="audit"),
        ):
            consumer = await queue.consumer(lease=30.0)
            assert await consumer.ack(await consumer.take(2)) == []
            key = queue.keys.ready(0)
            raw.xack(key, "audit", read_as(raw, key, "audit", 2)[0])  # audit: one of two
            result = await queue.purge("1 day")
            assert (result.acknowledged, result.unacknowledged) == (1, 0)
            assert result.keeps_acknowledged
            assert raw.xlen(key) == 2
            assert (await queue.purge("1 day", force=True)).unacknowledged == 2
            assert raw.xlen(key) == 0

    run(scenario())


def test_young_messages_stay(url: str, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver="list") as queue:
            await queue.send("new", 1)
            result = await queue.archive("1 day", force=True, store=JsonLinesArchive(tmp_path))
            assert result.removed == 0
            assert sum((await queue.stats())["ready"].values()) == 1

    run(scenario())


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_replay_merges_the_queue_and_the_archive_oldest_first(
    url: str, raw: redis.Redis, tmp_path: Path, driver: str
) -> None:
    with SyncQueue("jobs", url, driver=driver) as queue:
        steps = [{"step": "created", "a": 1}, {"step": "paid", "b": 2}, {"step": "shipped"}]
        for hour, payload in enumerate(steps):
            at = LONG_AGO_MS + hour * HOUR_MS
            send_old(raw, queue, "order", payload, at, identifier="o-1")
    store = JsonLinesArchive(tmp_path)

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver=driver) as queue:
            # the first two into the archive (sent before 10:30), the third left queued
            older_than = time.time() - (LONG_AGO_MS + 1.5 * HOUR_MS) / 1000
            await queue.archive(older_than, force=True, store=store)
            entries = await queue.history("o-1", store=store)
            assert [e.source for e in entries] == ["archive", "archive", "queue"]
            assert [e.enqueued_at for e in entries] == [
                (LONG_AGO_MS + h * HOUR_MS) / 1000 for h in range(3)
            ]
            assert await queue.replay("o-1", store=store) == {"step": "shipped", "a": 1, "b": 2}
            until = "2026-01-01T11:00:00Z"
            assert await queue.replay("o-1", until=until, store=store) == {
                "step": "paid",
                "a": 1,
                "b": 2,
            }
            assert await queue.replay("o-2", store=store) == {}

    run(scenario())


def test_bad_durations_and_moments_fail_before_any_io(tmp_path: Path) -> None:
    async def scenario() -> None:
        queue = RedisQueue("jobs", UNREACHABLE)
        store = JsonLinesArchive(tmp_path)
        with pytest.raises(ConfigError) as caught:
            await queue.purge("soon")
        assert caught.value.option == "older_than"
        with pytest.raises(ConfigError):
            await queue.archive("-", store=store)
        with pytest.raises(ConfigError) as caught:
            await queue.history("o-1", until="not a moment", store=store)
        assert caught.value.option == "until"
        await queue.aclose()

    run(scenario())


def test_purge_of_a_queue_never_used_is_not_found(url: str) -> None:
    async def scenario() -> None:
        async with RedisQueue("never", url) as queue:
            with pytest.raises(QueueNotFound):
                await queue.purge("1 day")

    run(scenario())


class GatedStore(JsonLinesArchive):
    """A store whose append waits for ``gate``, which a task on the event loop sets: if
    the append ran on the loop, that task could not run and the append would fail."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.threads: set[int] = set()

    def append(self, records: Sequence[ArchivedMessage]) -> None:
        self.threads.add(threading.get_ident())
        if not self.gate.wait(5):
            raise QueueError("the append ran on the event loop: the gate never opened")
        super().append(records)


def test_the_archives_file_io_runs_off_the_event_loop(
    url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    old_messages(url, raw, "list")
    store = GatedStore(tmp_path)

    async def open_gate() -> None:
        while not store.threads:
            await asyncio.sleep(0.005)
        store.gate.set()

    async def scenario() -> None:
        async with RedisQueue("jobs", url) as queue:
            opener = asyncio.ensure_future(open_gate())
            result = await queue.archive("1 day", force=True, store=store)
            await opener
            assert result.unacknowledged == 3
            assert threading.get_ident() not in store.threads

    run(scenario())
    assert len(store.read("jobs")) == 3


class FullDisk(JsonLinesArchive):
    def append(self, records: Sequence[ArchivedMessage]) -> None:
        raise QueueError("disk full")

    def remove(self, queue: str, records: Iterable[ArchivedMessage]) -> int:
        raise AssertionError("nothing was archived, so nothing is taken back")


def test_nothing_is_deleted_when_the_archive_cannot_be_written(
    url: str, raw: redis.Redis, tmp_path: Path
) -> None:
    old_messages(url, raw, "stream")

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver="stream") as queue:
            with pytest.raises(QueueError, match="disk full"):
                await queue.archive("1 day", force=True, store=FullDisk(tmp_path))
            assert raw.xlen(queue.keys.ready(0)) == 3

    run(scenario())


def test_restore_with_nothing_archived_leaves_redis_alone(url: str, tmp_path: Path) -> None:
    """Nothing to put back: the queue is not opened (nor its group made), so a queue
    never used stays so, and an unreachable Redis is not an error."""
    store = JsonLinesArchive(tmp_path)

    async def scenario() -> None:
        queue = RedisQueue("never-used", url, driver="stream")
        try:
            assert await queue.restore(store=store) == {}
            assert not await queue.exists()
        finally:
            await queue.aclose()
        queue = RedisQueue("never-used", UNREACHABLE)
        try:
            assert await queue.restore(store=store) == {}
        finally:
            await queue.aclose()

    run(scenario())


@pytest.mark.parametrize("driver", DRIVERS)
def test_restore_into_a_queue_that_no_longer_exists_makes_it_again(
    url: str, tmp_path: Path, driver: str
) -> None:
    store = JsonLinesArchive(tmp_path)
    body = {"event": "job", "payload": {"n": 1}, "priority": 0, "enqueued_at": 1}
    store.append([ArchivedMessage("gone", "old-1", body, "ready:0", 1.5, unacknowledged=True)])

    async def scenario() -> None:
        queue = RedisQueue("gone", url, driver=driver)
        try:
            assert not await queue.exists()
            assert list(await queue.restore(store=store)) == ["old-1"]
            assert await queue.exists()
            assert (await queue.stats())["ready"] == {0: 1}
        finally:
            await queue.aclose()
        assert store.read("gone") == []

    run(scenario())


@pytest.mark.parametrize("driver", ["list", "sorted-set"])
def test_a_message_a_worker_took_meanwhile_is_neither_deleted_nor_left_archived(
    url: str, raw: redis.Redis, tmp_path: Path, driver: str
) -> None:
    old_messages(url, raw, driver)

    async def scenario(store: TakingStore) -> None:
        async with RedisQueue("jobs", url) as queue:
            result = await queue.archive("1 day", force=True, store=store)
            assert result.removed == 0
            assert store.read("jobs") == []  # taken back
            assert (await queue.stats())["processing"] == 3

    with SyncQueue("jobs", url) as worker_side:
        run(scenario(TakingStore(tmp_path, worker_side)))
