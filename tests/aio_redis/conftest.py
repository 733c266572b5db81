"""Fixtures for the asyncio Redis tests: a real redis-server per session, emptied for
each test, and a way to run a coroutine with a deadline."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.helpers import script_processes, wait_for

# the same server and emptied-per-test URL as the sync Redis tests
from tests.redis.conftest import named, raw, redis_server, url
from zevents.redis.defaults import DRIVERS as ALL_DRIVERS

T = TypeVar("T")
DRIVERS = list(ALL_DRIVERS)
WORKER_SCRIPT = Path(__file__).with_name("worker_script.py")
__all__ = ["DRIVERS", "named", "raw", "redis_server", "run", "url", "wait_for"]


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


@pytest.fixture
def spawn(tmp_path: Path, url: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``worker_script.py`` processes (an async worker each); all are killed in
    teardown."""
    with script_processes(WORKER_SCRIPT, url, str(tmp_path)) as start:
        yield start


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
