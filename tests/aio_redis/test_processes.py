"""Async workers as processes: kill -9 loses nothing, SIGTERM finishes what is in flight."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.aio_redis.conftest import DRIVERS, done_names, eventually, run, wait_ready
from tests.helpers import wait_for
from zevents.aio.redis import RedisQueue, Worker
from zevents.eventbus import Bus
from zevents.redis import RedisQueue as SyncQueue

Spawn = Callable[..., subprocess.Popen[bytes]]
NAMES = [f"m{n}" for n in range(30)]


def send_jobs(url: str, driver: str, sleep: float) -> None:
    with SyncQueue("jobs", url, driver=driver) as queue:
        queue.send_many([("job.run", {"name": name, "sleep": sleep}) for name in NAMES])


@pytest.mark.parametrize("driver", DRIVERS)
def test_an_async_worker_killed_mid_run_loses_nothing(
    url: str, spawn: Spawn, tmp_path: Path, driver: str
) -> None:
    send_jobs(url, driver, sleep=0.3)
    proc = spawn("jobs", driver, "0.5", "10")
    wait_ready(proc)
    wait_for(lambda: len(list(tmp_path.glob("*.started"))) >= 10, what="ten started")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    interrupted = {p.stem for p in tmp_path.glob("*.started")} - done_names(tmp_path)
    assert interrupted  # it died with messages in flight

    async def rest() -> None:
        async def finish(event: str, payload: dict[str, str]) -> None:
            (tmp_path / f"{payload['name']}.done").touch()

        bus = Bus()
        bus.listen("job.*", finish)
        async with RedisQueue("jobs", url) as queue:
            worker = Worker(queue, bus, keep_alive=0.5, concurrency=10)
            task = asyncio.create_task(worker.run())
            await eventually(lambda: done_names(tmp_path) == set(NAMES), what="every message")
            worker.stop()
            await task
            stats = await queue.stats()
            assert (stats["processing"], stats["failed"], sum(stats["ready"].values())) == (0, 0, 0)

    run(rest())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_messages_in_flight_then_exits_zero(
    url: str, spawn: Spawn, tmp_path: Path, signum: int
) -> None:
    send_jobs(url, "list", sleep=0.5)
    proc = spawn("jobs", "list", "30", "5")
    wait_ready(proc)
    wait_for(lambda: len(list(tmp_path.glob("*.started"))) == 5, what="five started")
    proc.send_signal(signal.SIGHUP)  # ignored
    proc.send_signal(signum)
    assert proc.wait(timeout=10) == 0
    started = {p.stem for p in tmp_path.glob("*.started")}
    assert done_names(tmp_path) == started
    stats = SyncQueue("jobs", url).stats()
    assert (stats["processing"], stats["ready"]) == (0, {0: 30 - len(started)})


def test_a_second_signal_interrupts_the_messages_in_flight_and_gives_them_back(
    url: str, spawn: Spawn, tmp_path: Path
) -> None:
    send_jobs(url, "list", sleep=30)
    proc = spawn("jobs", "list", "30", "5")
    wait_ready(proc)
    wait_for(lambda: len(list(tmp_path.glob("*.started"))) == 5, what="five started")
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout is not None
    assert b"received SIGTERM, stopping" in proc.stdout.readline()  # two at once are one
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert done_names(tmp_path) == set()
    with SyncQueue("jobs", url) as queue:
        stats = queue.stats()
        assert (stats["processing"], stats["ready"]) == (0, {0: 30})
        assert {t.attempt for t in queue.consumer().take(30)} == {1}
