"""Jobs (private): a queue's history work, written once for the sync and the asyncio
queue.

A *job* is a generator, as a plan is, that yields four kinds of work: a plan to run on
Redis (``zevents.redis.protocol``), a ``Write`` (a plan that writes messages: the queue
prepares first and waits for its replicas), a ``Blocking`` call (an archive's file
I/O), and ``OPENING`` (the queue opened, for its driver and shape: a job asks for it
only when it has something to do with them, so one with nothing to do leaves the queue
unread). ``run_job`` runs one for the sync queue; the asyncio queue runs the same job,
awaiting the plans and running the blocking calls in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Union

from zevents.redis.protocol import Driver, Plan
from zevents.redis.protocol.records import QueueShape

__all__ = ["OPENING", "Blocking", "Job", "Opening", "Write", "run_job"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Blocking(Generic[T]):
    """A call that blocks (file I/O): the job gets its result."""

    call: Callable[[], T]


@dataclass(frozen=True, slots=True)
class Write(Generic[T]):
    """A plan that writes messages: the job gets its result."""

    plan: Plan[T]


@dataclass(frozen=True, slots=True)
class Opening:
    """The queue, opened: the job gets its ``(driver, shape)``."""


#: The one ``Opening``.
OPENING = Opening()

Work = Union[Plan[Any], Blocking[Any], Write[Any], Opening]  # noqa: UP007 - a runtime alias
Job = Generator[Work, Any, T]


def run_job(
    job: Job[T],
    run: Callable[[Plan[Any]], Any],
    write: Callable[[Plan[Any]], Any],
    opened: Callable[[], tuple[Driver, QueueShape]],
) -> T:
    """Run ``job`` to its result: plans with ``run``, writes with ``write``, blocking
    calls as they are, ``OPENING`` with ``opened``. An error of any of them ends the job
    and is raised."""
    reply: Any = None
    while True:
        try:
            work = job.send(reply)
        except StopIteration as done:
            result: T = done.value
            return result
        if isinstance(work, Blocking):
            reply = work.call()
        elif isinstance(work, Write):
            reply = write(work.plan)
        elif isinstance(work, Opening):
            reply = opened()
        else:
            reply = run(work)
