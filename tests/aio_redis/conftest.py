"""Fixtures for the asyncio Redis tests: a real redis-server per session, emptied for
each test, and a way to run a coroutine with a deadline."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from tests.helpers import child_env, wait_for
from zevents.redis import RedisServer
from zevents.redis.defaults import DRIVERS as ALL_DRIVERS

T = TypeVar("T")
DRIVERS = list(ALL_DRIVERS)
WORKER_SCRIPT = Path(__file__).with_name("worker_script.py")
__all__ = ["DRIVERS", "run", "wait_for"]


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    """Run ``coro`` on a new event loop; fail if it takes longer than ``timeout`` (it is
    cancelled then; not ``wait_for``, which on Python 3.11 can return normally when the
    cancellation it sends is swallowed)."""

    async def bounded() -> T:
        task = asyncio.ensure_future(coro)
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=5)
            raise AssertionError(f"timed out after {timeout}s")
        return task.result()

    return asyncio.run(bounded())


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
def spawn(tmp_path: Path, url: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``worker_script.py`` processes (an async worker each); all are killed in
    teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), url, str(tmp_path), *args],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def wait_ready(proc: subprocess.Popen[bytes]) -> None:
    """Read the child's ``ready`` line (it is about to run its worker)."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == b"ready", line + proc.stdout.read()


def done_names(folder: Path) -> set[str]:
    """The payload names the children's receivers finished."""
    return {p.stem for p in folder.glob("*.done")}


async def eventually(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll ``predicate`` (which may return an awaitable) on the loop until it is truthy;
    fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.01)
