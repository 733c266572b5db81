"""Archive stores, and ``RedisQueue.archive`` / ``restore``: old messages move to a store
(written first, deleted after) and come back as new messages keeping ``original_id``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest
import redis

from tests.redis.conftest import DRIVERS
from tests.redis.old_messages import LONG_AGO_MS, TakingStore, make_old, read_as, send_old
from zevents.errors import QueueError
from zevents.redis import ArchivedMessage, ArchiveStore, JsonLinesArchive, RedisQueue
from zevents.redis.archive import default_archive_directory

MakeQueue = Callable[..., RedisQueue]


def _record(message_id: str, queue: str = "jobs", location: str = "ready:0") -> ArchivedMessage:
    body = {"event": "job", "payload": {"n": message_id}, "priority": 0, "enqueued_at": 1}
    return ArchivedMessage(queue, message_id, body, location, 1.5, unacknowledged=True)


def test_a_json_lines_store_appends_reads_back_by_queue_and_removes(tmp_path: Path) -> None:
    store = JsonLinesArchive(tmp_path / "archive")
    store.append([_record("a"), _record("b"), _record("c", queue="other/queue")])
    store.append([_record("d")])
    assert [r.id for r in store.read("jobs")] == ["a", "b", "d"]
    assert store.read("jobs")[0] == _record("a")
    assert [r.id for r in store.read("other/queue")] == ["c"]
    assert store.file_for("other/queue") == tmp_path / "archive" / "other%2Fqueue.jsonl"
    assert store.remove("jobs", [_record("b"), _record("d"), _record("zz")]) == 2
    assert [r.id for r in store.read("jobs")] == ["a"]
    assert store.read("never") == []


def test_a_store_path_ending_in_jsonl_is_one_file_for_every_queue(tmp_path: Path) -> None:
    store = JsonLinesArchive(tmp_path / "all.jsonl")
    store.append([_record("a"), _record("b", queue="other")])
    assert (tmp_path / "all.jsonl").read_bytes().count(b"\n") == 2
    assert [r.id for r in store.read("other")] == ["b"]
    store.remove("other", store.read("other"))
    assert [r.queue for r in store.read("jobs")] == ["jobs"]
    assert store.read("other") == []


def test_the_default_store_lives_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZEVENTS_HOME", str(tmp_path / "home"))
    assert default_archive_directory() == tmp_path / "home" / "archive"
    JsonLinesArchive().append([_record("a")])
    assert (tmp_path / "home" / "archive" / "jobs.jsonl").exists()


def test_a_line_cut_short_by_a_crash_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = JsonLinesArchive(tmp_path)
    store.append([_record("a")])
    with open(store.file_for("jobs"), "ab") as file:
        file.write(b'{"queue": "jobs", "id": "b", "bo')
    with caplog.at_level(logging.WARNING, logger="zevents.redis.archive"):
        assert [r.id for r in store.read("jobs")] == ["a"]
    assert "line 2 is not an archived message" in caplog.text
    store.remove("jobs", [_record("a")])
    assert store.file_for("jobs").read_bytes().startswith(b'{"queue": "jobs", "id": "b"')


def test_a_store_that_cannot_be_written_is_a_queue_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(QueueError, match=r"could not append to archive .*file"):
        JsonLinesArchive(blocker / "archive").append([_record("a")])


def _old_messages(make_queue: MakeQueue, raw: redis.Redis, driver: str) -> RedisQueue:
    """A queue holding three old messages with identifiers, sent in this order."""
    queue = make_queue(driver=driver)
    for n in range(3):
        send_old(raw, queue, "order.step", {"n": n}, LONG_AGO_MS + n, identifier=f"o-{n}")
    return queue


@pytest.mark.parametrize("driver", DRIVERS)
def test_archive_moves_old_messages_to_the_store_and_restore_puts_them_back(
    make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path, driver: str
) -> None:
    queue = _old_messages(make_queue, raw, driver)
    store = JsonLinesArchive(tmp_path)
    result = queue.archive("1 day", force=True, store=store)
    assert (result.acknowledged, result.unacknowledged) == (0, 3)
    records = store.read(queue.name)
    assert sorted(r.body["payload"]["n"] for r in records) == [0, 1, 2]
    assert all(r.unacknowledged and r.queue == queue.name for r in records)
    assert sum(queue.stats()["ready"].values()) == 0

    first = min(records, key=lambda r: r.body["payload"]["n"])
    restored = queue.restore([first.id], store=store)
    assert list(restored) == [first.id]
    assert (restored[first.id] != first.id) is (driver != "set")  # set: the content id
    assert sorted(r.body["payload"]["n"] for r in store.read(queue.name)) == [1, 2]
    consumer = queue.consumer(lease=30.0)
    (taken,) = consumer.take(10)
    message = consumer.decode(taken)
    assert (message.id, message.payload, message.identifier) == (
        restored[first.id],
        {"n": 0},
        "o-0",
    )
    body = json.loads(taken.body)
    assert body["original_id"] == first.id
    assert body["original_enqueued_at"] == LONG_AGO_MS
    assert body["enqueued_at"] > LONG_AGO_MS

    assert len(queue.restore(store=store)) == 2
    assert store.read(queue.name) == []
    payloads = [consumer.decode(t).payload["n"] for t in consumer.take(10)]
    assert (sorted(payloads) if driver == "set" else payloads) == [1, 2]  # set: no order


def test_stream_archive_without_force_takes_entries_every_group_acknowledged(
    make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path
) -> None:
    queue = make_queue(driver="stream")
    make_queue(driver="stream", group="audit")
    for n in range(2):
        send_old(raw, queue, "job", n, LONG_AGO_MS + n)
    consumer = queue.consumer(lease=30.0)
    consumer.ack(consumer.take(10))
    key = queue.keys.ready(0)
    (entry_id,) = read_as(raw, key, "audit", 1)
    raw.xack(key, "audit", entry_id)
    store = JsonLinesArchive(tmp_path)
    result = queue.archive("1 day", store=store)
    assert (result.acknowledged, result.unacknowledged) == (1, 0)
    (record,) = store.read(queue.name)
    assert (record.body["payload"], record.unacknowledged) == (0, False)
    assert record.location == f"stream:0:{entry_id}"
    assert raw.xlen(key) == 1


class FailingStore:
    """A store whose disk is full."""

    def append(self, records: Sequence[ArchivedMessage]) -> None:
        raise QueueError("disk full")

    def read(self, queue: str) -> list[ArchivedMessage]:
        return []

    def remove(self, queue: str, records: Iterable[ArchivedMessage]) -> int:
        return 0


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_nothing_is_deleted_when_the_archive_cannot_be_written(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    queue = _old_messages(make_queue, raw, driver)
    store: ArchiveStore = FailingStore()
    with pytest.raises(QueueError, match="disk full"):
        queue.archive("1 day", force=True, store=store)
    if driver == "stream":
        assert raw.xlen(queue.keys.ready(0)) == 3
    else:
        assert queue.stats()["ready"] == {0: 3}


@pytest.mark.parametrize("driver", ["list", "sorted-set"])
def test_a_message_a_worker_took_meanwhile_is_neither_deleted_nor_left_archived(
    make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path, driver: str
) -> None:
    queue = _old_messages(make_queue, raw, driver)
    store = TakingStore(tmp_path, queue)
    result = queue.archive("1 day", force=True, store=store)
    assert result.removed == 0
    assert store.read(queue.name) == []
    assert queue.stats()["processing"] == 3


def test_restore_puts_back_one_message_per_original_id(
    make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path
) -> None:
    """A crash between writing the archive and deleting can leave a record twice."""
    queue = _old_messages(make_queue, raw, "list")
    store = JsonLinesArchive(tmp_path)
    queue.archive("1 day", force=True, store=store)
    store.append(store.read(queue.name)[:1])
    assert len(store.read(queue.name)) == 4
    assert len(queue.restore(store=store)) == 3
    assert store.read(queue.name) == []
    assert queue.stats()["ready"] == {0: 3}


def test_restore_of_unknown_ids_restores_nothing(make_queue: MakeQueue, tmp_path: Path) -> None:
    assert make_queue().restore(["no-such-id"], store=JsonLinesArchive(tmp_path)) == {}


def test_restore_with_nothing_archived_leaves_redis_alone(url: str, tmp_path: Path) -> None:
    """Nothing to put back: the queue is not opened, so a queue never used stays so,
    and an unreachable Redis is not an error."""
    store = JsonLinesArchive(tmp_path)
    with RedisQueue("never-used", url, driver="stream") as queue:
        assert queue.restore(store=store) == {}
        assert not queue.exists()
    with RedisQueue("never-used", "redis://127.0.0.1:1/0") as queue:
        assert queue.restore(store=store) == {}


@pytest.mark.parametrize("driver", DRIVERS)
def test_restore_into_a_queue_that_no_longer_exists_makes_it_again(
    url: str, tmp_path: Path, driver: str
) -> None:
    store = JsonLinesArchive(tmp_path)
    store.append([_record("old-1", queue="gone"), _record("old-2", queue="gone")])
    with RedisQueue("gone", url, driver=driver) as queue:
        assert not queue.exists()
        assert sorted(queue.restore(store=store)) == ["old-1", "old-2"]
        assert queue.exists()
        assert queue.stats()["ready"] == {0: 2}
        assert store.read("gone") == []


def test_archive_keeps_recent_messages(
    make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path
) -> None:
    queue = make_queue()
    old = queue.send("job", "old")
    make_old(raw, queue, old, LONG_AGO_MS)
    queue.send("job", "recent")
    store = JsonLinesArchive(tmp_path)
    assert queue.archive("1 week", force=True, store=store).unacknowledged == 1
    assert [r.id for r in store.read(queue.name)] == [old]
    assert queue.stats()["ready"] == {0: 1}
