"""The list, sorted-set and set drivers: ids in ready structures, bodies in a hash.

All three share one set of Lua scripts (``lua/*.lua``); only the ready structure differs:

* ``list``: one list per priority (``LPOP`` many); FIFO, due messages join the tail.
* ``sorted-set``: one sorted set per priority scored by enqueue sequence; due and
  retried messages take their original place.
* ``set``: one set per priority (``SPOP`` many); unordered, duplicates are one message.

A taken message is leased atomically in the same script: its id goes to the
``processing`` sorted set scored by the lease deadline (Redis time) and its lease token to
``leases``; ``reclaim.lua`` returns expired ones. Consumer names play no part: the lease
token fences. Sans-I/O: every method returns a plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zevents.redis.message import Reclaimed, Taken
from zevents.redis.protocol.base import (
    TAKE_MAX,
    BaseDriver,
    Done,
    Fields,
    Finished,
    Reader,
    as_str,
    as_strs,
)
from zevents.redis.protocol.steps import Batch, Command, Plan, single

__all__ = ["RECLAIM_MAX", "CoreDriver"]

#: Expired leases one reclaim puts back in line (or fails) at most.
RECLAIM_MAX = 500

_SIZE = {"list": "llen", "sorted-set": "zcard", "set": "scard"}
# The id first in line of a ready structure (a set has no order: none).
_HEAD: dict[str, tuple[str, tuple[int, ...]]] = {
    "list": ("lindex", (0,)),
    "sorted-set": ("zrange", (0, 0)),
}


def _taken(reply: Sequence[Any]) -> list[Taken]:
    """``take.lua``'s reply: the lease token, then id, body, attempt, priority per message."""
    token = as_str(reply[0])
    return [
        Taken(as_str(reply[i]), reply[i + 1], int(reply[i + 2]), int(reply[i + 3]), token)
        for i in range(1, len(reply), 4)
    ]


class CoreDriver(BaseDriver):
    """A driver over lists, sorted sets or sets (``kind``)."""

    def prepare(self) -> Plan[None]:
        """Nothing to prepare."""
        return
        yield  # a plan with no step

    def take(self, reader: Reader, count: int) -> Plan[list[Taken]]:
        args = [min(count, TAKE_MAX), reader.lease_ms, len(reader.levels), *reader.levels]
        return (yield from single(self.call("take.lua", args), _taken))

    def reclaim(
        self, reader: Reader, max_attempts: int, resume: Mapping[int, str] | None = None
    ) -> Plan[Reclaimed]:
        """Put expired leases back in line (or fail them past ``max_attempts``), up to
        ``RECLAIM_MAX``; what comes back is taken by the next ``take``, so nothing is
        returned here but whether the limit was reached."""
        reply = yield self.call("reclaim.lua", [max_attempts, RECLAIM_MAX])
        reclaimed = Reclaimed()
        reclaimed.more = int(reply[0]) + int(reply[1]) >= RECLAIM_MAX
        return reclaimed

    def ack(self, reader: Reader, done: Done, finished: Finished | None = None) -> Plan[list[str]]:
        if finished is None:
            args: list[Any] = []
            for taken, (identifier, serial) in done:
                args.extend((taken.id, taken.token, identifier, serial))
            return (yield from single(self.call("ack.lua", args), as_strs))
        args = [finished.keep_ms]
        for (taken, (identifier, serial)), record in zip(done, finished.records, strict=True):
            args.extend((taken.id, taken.token, identifier, serial, record))
        call = self.call("ack.lua", args, more_keys=[finished.key])
        return (yield from single(call, as_strs))

    def retry(self, reader: Reader, taken: Taken, delay_ms: int, count: bool) -> Plan[bool]:
        args = ["retry", taken.id, taken.token, delay_ms, "1" if count else "0"]
        return (yield from single(self.call("settle.lua", args), bool))

    def fail(self, reader: Reader, taken: Taken, record: bytes, fields: Fields) -> Plan[bool]:
        args = ["fail", taken.id, taken.token, record, *fields]
        return (yield from single(self.call("settle.lua", args), bool))

    def touch(self, reader: Reader, taken: Sequence[Taken]) -> Plan[list[str]]:
        args: list[Any] = [reader.lease_ms]
        for t in taken:
            args.extend((t.id, t.token))
        return (yield from single(self.call("touch.lua", args), as_strs))

    def release(self, reader: Reader, taken: Sequence[Taken]) -> Plan[int]:
        args: list[Any] = []
        for t in reversed(taken):  # pushed to the head one by one: keep their order
            args.extend((t.id, t.token))
        if not args:
            return 0
        return (yield from single(self.call("release.lua", args), int))

    def leave(self, reader: Reader) -> Plan[None]:
        """Nothing to do: these drivers keep no per-consumer state."""
        return
        yield  # a plan with no step

    def stats(self) -> Plan[dict[str, Any]]:
        keys = self.keys
        size = _SIZE[self.name]
        steps = [Command(size, (keys.ready(p),)) for p in keys.priorities]
        # Leases due before +inf: not the member take.lua keeps in the set (its encoding).
        steps.append(Command("zcount", (keys.key("processing"), "-inf", "(+inf")))
        replies = yield Batch([*steps, *self._common_counts()])
        n = len(keys.priorities)
        ready = {p: int(replies[i]) for i, p in enumerate(keys.priorities)}
        oldest = yield from self._oldest_ready(ready)
        return self._stats(ready, int(replies[n]), replies[n + 1 :], oldest)

    def _oldest_ready(self, ready: dict[int, int]) -> Plan[float | None]:
        """When the first message in line at each level was sent; the earliest of them."""
        head = _HEAD.get(self.name)
        levels = [p for p, count in ready.items() if count]
        if head is None or not levels:
            return None
        method, args = head
        firsts = yield Batch([Command(method, (self.keys.ready(p), *args)) for p in levels])
        ids = [f[0] if isinstance(f, list) else f for f in firsts]
        ids = [i for i in ids if i is not None]
        if not ids:
            return None
        bodies = yield Command("hmget", (self.keys.key("msgs"), ids))
        return self._enqueued_at(bodies)
