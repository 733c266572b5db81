"""Finished records on asyncio (``keep_finished``): the async worker writes one with
each acknowledgement, as the sync worker does; ``finished`` and ``clear_finished``
awaited; nothing without the option."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import redis

from tests.aio_redis.conftest import DRIVERS, run
from zevents.aio.redis import RedisQueue, Worker, current
from zevents.errors import ConfigError, PermanentError
from zevents.eventbus import Bus
from zevents.redis import RedisQueue as SyncQueue
from zevents.redis import RetryPolicy
from zevents.redis.protocol.finished import FinishedRecord


def flaky_bus(seen: list[Any]) -> Bus:
    """A bus whose async receiver fails the first attempt of payload 2, and sends 4 to
    the failed store at once (``PermanentError``)."""
    bus = Bus()

    async def work(event: str, payload: Any) -> None:
        await asyncio.sleep(0)
        if payload == 2 and current().attempt == 1:
            raise RuntimeError("once")
        if payload == 4:
            raise PermanentError("never")
        seen.append(payload)

    bus.listen("job.*", work)
    return bus


@pytest.mark.parametrize("driver", DRIVERS)
def test_the_async_worker_records_each_finished_message(url: str, driver: str) -> None:
    seen: list[Any] = []

    async def scenario() -> tuple[list[FinishedRecord], list[FinishedRecord], str]:
        async with RedisQueue("fin", url, driver=driver, keep_finished="14d") as queue:
            for n in (1, 2, 3, 4):
                await queue.send("job.run", n, identifier=f"job-{n}")
            retry = RetryPolicy(base=0.05)
            worker = Worker(queue, flaky_bus(seen), concurrency=4, max_messages=5, retry=retry)
            assert await worker.run() == 5  # 1, 2 twice, 3, and 4 failed
            assert (await queue.stats())["failed"] == 1
            return await queue.finished(), await queue.finished(limit=2), worker.id

    records, newest, worker_id = run(scenario(), timeout=30)
    assert sorted(seen) == [1, 2, 3]
    assert sorted(r.identifier or "" for r in records) == ["job-1", "job-2", "job-3"]
    assert [r.finished_at for r in records] == sorted(r.finished_at for r in records)
    assert {r.identifier: r.attempts for r in records} == {"job-1": 1, "job-2": 2, "job-3": 1}
    for record in records:
        assert (record.event, record.pid, record.worker) == ("job.run", os.getpid(), worker_id)
        assert record.duration >= 0
        assert record.memory_before > 0
        assert record.memory_after > 0
        assert record.group == ("default" if driver == "stream" else None)
    assert [r.id for r in newest] == [r.id for r in records[1:]]
    with SyncQueue("fin", url) as same:  # the same records, whichever side reads them
        assert [r.id for r in same.finished()] == [r.id for r in records]


def test_without_keep_finished_the_async_worker_records_nothing(url: str) -> None:
    seen: list[Any] = []

    async def scenario() -> list[FinishedRecord]:
        async with RedisQueue("plain", url) as queue:
            await queue.send_many([("job.run", n) for n in (1, 3)])
            assert await Worker(queue, flaky_bus(seen), max_messages=2).run() == 2
            return await queue.finished()

    assert run(scenario()) == []
    assert sorted(seen) == [1, 3]
    client = redis.Redis.from_url(url)
    try:
        assert client.exists("zevents:{plain}:finished") == 0
    finally:
        client.close()


def test_clear_finished_deletes_old_records_or_all(url: str) -> None:
    async def scenario() -> tuple[int, int, int, list[FinishedRecord]]:
        async with RedisQueue("clear", url, keep_finished="30d") as queue:
            await queue.send_many([("job.run", n) for n in range(3)])
            assert await Worker(queue, Bus(), max_messages=3).run() == 3
            old = await queue.clear_finished(older_than="1d")  # none is a day old
            left = len(await queue.finished())
            gone = await queue.clear_finished()
            return old, left, gone, await queue.finished()

    assert run(scenario()) == (0, 3, 3, [])


@pytest.mark.parametrize("value", ["forever", "0s", -5])
def test_a_bad_keep_finished_is_refused_before_any_io(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        RedisQueue("jobs", "redis://127.0.0.1:1/0", keep_finished=value)  # type: ignore[arg-type]
    assert info.value.option == "keep_finished"
