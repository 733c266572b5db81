"""Jobs (private): a queue's history work, written once for the sync and the asyncio
queue.

A *job* is a generator, as a plan is, that yields three kinds of work: a plan to run on
Redis (``zevents.redis.protocol``), a ``Write`` (a plan that writes messages: the queue
prepares first and waits for its replicas), and a ``Blocking`` call (an archive's file
I/O). ``run_job`` runs one for the sync queue; the asyncio queue runs the same job,
awaiting the plans and running the blocking calls in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Union

from zevents.redis.protocol import Plan

__all__ = ["Blocking", "Job", "Write", "run_job"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Blocking(Generic[T]):
    """A call that blocks (file I/O): the job gets its result."""

    call: Callable[[], T]


@dataclass(frozen=True, slots=True)
class Write(Generic[T]):
    """A plan that writes messages: the job gets its result."""

    plan: Plan[T]


Work = Union[Plan[Any], Blocking[Any], Write[Any]]  # noqa: UP007 - a runtime alias
Job = Generator[Work, Any, T]


def run_job(job: Job[T], run: Callable[[Plan[Any]], Any], write: Callable[[Plan[Any]], Any]) -> T:
    """Run ``job`` to its result: plans with ``run``, writes with ``write``, blocking
    calls as they are. An error of any of them ends the job and is raised."""
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
        else:
            reply = run(work)
