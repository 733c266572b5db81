"""Finished records (``keep_finished``): written with the acknowledgement, trimmed by
age, listed and cleared; nothing at all without the option."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import child_env
from tests.redis.conftest import DRIVERS, Running, wait_for
from zevents.errors import ConfigError
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RetryPolicy, current

MakeQueue = Callable[..., RedisQueue]
StartWorker = Callable[..., Running]
DAY_MS = 86_400_000


def _redis_ms(raw: redis.Redis) -> int:
    seconds, micros = raw.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _flaky_bus(seen: list[Any]) -> Bus:
    """A bus whose receiver fails the first attempt of payload 2."""
    bus = Bus()

    def work(event: str, payload: Any) -> None:
        if payload == 2 and current().attempt == 1:
            raise RuntimeError("once")
        seen.append(payload)

    bus.listen("job.*", work)
    return bus


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_worker_records_each_finished_message_with_its_acknowledgement(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver, keep_finished="14d")
    before = _redis_ms(raw)
    for n in (1, 2, 3):
        queue.send("job.run", n, identifier=f"job-{n}")
    seen: list[Any] = []
    running = start_worker(queue, _flaky_bus(seen), retry=RetryPolicy(base=0.05))
    wait_for(lambda: len(queue.finished()) == 3)
    records = queue.finished()
    assert sorted(r.identifier or "" for r in records) == ["job-1", "job-2", "job-3"]
    assert [r.finished_at for r in records] == sorted(r.finished_at for r in records)
    by_identifier = {r.identifier: r for r in records}
    assert by_identifier["job-2"].attempts == 2
    assert by_identifier["job-1"].attempts == 1
    for record in records:
        assert record.event == "job.run"
        assert (record.pid, record.worker) == (os.getpid(), running.worker.id)
        assert record.duration >= 0
        assert record.memory_before > 0
        assert record.memory_after > 0
        assert before / 1000 <= record.finished_at <= _redis_ms(raw) / 1000
        assert record.group == ("default" if driver == "stream" else None)
    assert [r.id for r in queue.finished(limit=2)] == [r.id for r in records[1:]]
    assert queue.finished(limit=0) == []


@pytest.mark.parametrize("driver", DRIVERS)
def test_without_keep_finished_nothing_is_recorded(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver)
    for n in (1, 2, 3):
        queue.send("job.run", n)
    seen: list[Any] = []
    start_worker(queue, _flaky_bus(seen), retry=RetryPolicy(base=0.05))
    wait_for(lambda: sorted(seen) == [1, 2, 3])
    wait_for(lambda: queue.stats()["processing"] == 0)
    assert raw.exists(queue.keys.key("finished")) == 0
    assert queue.finished() == []


def _old_record(raw: redis.Redis, queue: RedisQueue, age_ms: int, message_id: str) -> None:
    at = _redis_ms(raw) - age_ms
    record = {"id": message_id, "event": "old", "finished_at": at, "attempts": 1}
    raw.zadd(queue.keys.key("finished"), {json.dumps(record): at})


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_records_older_than_keep_finished_are_trimmed_by_the_next_acknowledgement(
    make_queue: MakeQueue, raw: redis.Redis, driver: str
) -> None:
    queue = make_queue(driver=driver, keep_finished="1 day")
    _old_record(raw, queue, 2 * DAY_MS, "two-days")
    _old_record(raw, queue, DAY_MS // 2, "twelve-hours")
    queue.send("job.run", 1)
    consumer = queue.consumer(lease=30.0)
    (taken,) = consumer.take(1)
    record = json.dumps({"id": taken.id, "event": "job.run"}).encode()
    assert consumer.ack([taken], [record]) == []
    assert [r.id for r in queue.finished()] == ["twelve-hours", taken.id]


def test_clear_finished_deletes_old_records_or_all(make_queue: MakeQueue, raw: redis.Redis) -> None:
    queue = make_queue(keep_finished="30d")
    for n, age in enumerate((20 * DAY_MS, 15 * DAY_MS, 2 * DAY_MS, 60_000)):
        _old_record(raw, queue, age, f"r{n}")
    assert queue.clear_finished(older_than="14d") == 2
    assert [r.id for r in queue.finished()] == ["r2", "r3"]
    assert queue.clear_finished() == 2
    assert queue.finished() == []
    assert queue.clear_finished() == 0


def test_records_are_ignored_by_a_consumer_that_keeps_none(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    queue = make_queue()
    queue.send("job.run", 1)
    consumer = queue.consumer(lease=30.0)
    assert consumer.ack(consumer.take(1), [b'{"id": "x", "event": "e"}']) == []
    assert raw.exists(queue.keys.key("finished")) == 0


@pytest.mark.parametrize("value", ["forever", "0s", -5])
def test_a_bad_keep_finished_is_refused_before_any_io(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        RedisQueue("jobs", "redis://127.0.0.1:1/0", keep_finished=value)  # type: ignore[arg-type]
    assert info.value.option == "keep_finished"


_WORKER = """
import pathlib, sys, time
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, Worker, current

url, started = sys.argv[1], pathlib.Path(sys.argv[2])
bus = Bus()

def job(event, payload):
    if current().attempt == 1:  # the first attempt hangs until the process is killed
        started.write_text("started")
        time.sleep(60)

bus.listen("job.*", job)
with RedisQueue("jobs", url, keep_finished="1d") as queue:
    Worker(queue, bus, keep_alive=0.5).run()
"""


def test_a_killed_worker_records_nothing_and_the_one_that_finishes_records_its_pid(
    make_queue: MakeQueue, url: str, tmp_path: Path
) -> None:
    """The record is written with the acknowledgement: a worker killed mid-message
    leaves none; the process that finishes the message records its own pid."""
    queue = make_queue("jobs", keep_finished="1d")
    queue.send("job.run", "hang", identifier="job-1")
    started = tmp_path / "started"
    procs: list[subprocess.Popen[bytes]] = []

    def spawn() -> subprocess.Popen[bytes]:
        args = [sys.executable, "-c", _WORKER, url, str(started)]
        procs.append(subprocess.Popen(args, env=child_env()))
        return procs[-1]

    try:
        first = spawn()
        wait_for(started.exists, timeout=20, what="the first attempt to start")
        first.kill()
        first.wait(timeout=10)
        assert queue.finished() == []
        second = spawn()
        wait_for(lambda: queue.finished(), timeout=20, what="a finished record")
        (record,) = queue.finished()
        assert (record.pid, record.attempts, record.identifier) == (second.pid, 2, "job-1")
        assert record.memory_before > 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=10)
