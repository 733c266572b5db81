"""The vocabulary of the sans-I/O Redis protocol: steps, and plans made of them.

A *plan* is a generator: it yields the Redis work it needs (a ``Call`` of a Lua script,
a ``Command`` of redis-py, or a ``Batch`` of either sent in one pipeline, which may end
with a ``Wait`` for replicas), is sent each reply back, and returns its result. It never
touches a socket, so one plan serves a blocking client and an asyncio one alike: each
front end only runs the steps.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, Union

__all__ = ["Batch", "Call", "Command", "Plan", "Step", "Wait", "single", "step_replies", "time_ms"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """Run the Lua script ``script`` (a file name under ``lua/``) by SHA.

    Attributes:
        script: The script's file name, e.g. ``"take.lua"``.
        keys: Its KEYS.
        args: Its ARGV.
    """

    script: str
    keys: Sequence[str]
    args: Sequence[Any]


@dataclass(frozen=True, slots=True)
class Command:
    """Call the redis-py command method ``method`` (``"hgetall"``, ``"xinfo_groups"``).

    The sync and asyncio clients and their pipelines share these names; the reply is
    the one redis-py parses.
    """

    method: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Wait:
    """Redis ``WAIT``: block until ``replicas`` replicas acknowledged the writes sent
    before it on the same connection, or ``timeout_ms`` passed; the reply is how many
    did. Only inside a ``Batch``, after its writes (WAIT counts the writes of its own
    connection); on a cluster it goes to the master of ``key``'s slot. The clients run
    it as ``INCR key`` then ``WAIT``, so the connection has written something even when
    the batch's writes matched what was there (see ``zevents.redis.replication``).
    """

    replicas: int
    timeout_ms: int
    key: str


@dataclass(frozen=True, slots=True)
class Batch:
    """Several steps sent in one pipeline; the reply is the list of their replies."""

    steps: Sequence[Call | Command | Wait]


#: What a plan may yield.
Step = Union[Call, Command, Batch]  # noqa: UP007 - a runtime alias, read on Python 3.10
#: A generator that yields steps, is sent their replies, and returns a ``T``.
Plan = Generator[Step, Any, T]


def single(step: Call | Command, parse: Callable[[Any], T]) -> Plan[T]:
    """The plan of one step whose reply ``parse`` turns into the result."""
    reply = yield step
    return parse(reply)


def _ms(reply: Any) -> int:
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


def time_ms() -> Plan[int]:
    """The Redis server clock, in milliseconds."""
    return single(Command("time"), _ms)


def step_replies(steps: Sequence[Call | Command | Wait], replies: Sequence[Any]) -> list[Any]:
    """One reply per step, from a pipeline that ran each ``Wait`` as two commands
    (``INCR`` of its key, then ``WAIT``): the marker's reply is left out, or stands for
    the ``Wait`` when it is an error (no write, no confirmation)."""
    out: list[Any] = []
    found = iter(replies)
    for step in steps:
        reply = next(found)
        if isinstance(step, Wait):
            waited = next(found)
            reply = reply if isinstance(reply, Exception) else waited
        out.append(reply)
    return out
