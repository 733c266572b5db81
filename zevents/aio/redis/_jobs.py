"""Running the sync queue's history jobs (``zevents.redis.jobs``) on asyncio (private)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from zevents.redis.jobs import Blocking, Job, Opening, Write
from zevents.redis.protocol import Driver, Plan
from zevents.redis.protocol.records import QueueShape

__all__ = ["run_job"]

T = TypeVar("T")


async def run_job(
    job: Job[T],
    run: Callable[[Plan[Any]], Awaitable[Any]],
    write: Callable[[Plan[Any]], Awaitable[Any]],
    opened: Callable[[], Awaitable[tuple[Driver, QueueShape]]],
) -> T:
    """Run ``job`` to its result: plans awaited with ``run``, writes with ``write``,
    ``OPENING`` with ``opened``, and blocking calls (an archive's file I/O) in a thread,
    off the event loop. An error of any of them ends the job and is raised. Cancelled
    during a blocking call, the call still finishes in its thread (an archive page is
    then written but its messages not yet deleted: the next run archives them again,
    none is lost)."""
    reply: Any = None
    while True:
        try:
            work = job.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result
        if isinstance(work, Blocking):
            reply = await asyncio.to_thread(work.call)
        elif isinstance(work, Write):
            reply = await write(work.plan)
        elif isinstance(work, Opening):
            reply = await opened()
        else:
            reply = await run(work)
