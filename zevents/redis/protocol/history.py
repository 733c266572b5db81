"""A queue's history, sans-I/O: the old messages purge and archive take, and the stored
bodies replay reads.

Old messages are found and removed in pages: ``stored`` / ``drop_stored`` for bodies in
the ``msgs`` hash that no consumer has (ready on list, sorted-set and set; delayed on
every driver), ``entries`` / ``drop_entries`` for stream entries (``purge.lua``,
``stream_purge.lua``). Finding writes nothing; removing checks again, inside the script,
that each message is still where it was found, so a message a worker took in between
is left alone. Every method returns a plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from zevents.errors import DecodeError
from zevents.redis.keys import QueueKeys
from zevents.redis.message import BodyCodec
from zevents.redis.protocol.base import as_str
from zevents.redis.protocol.records import QueueShape
from zevents.redis.protocol.steps import Call, Command, Plan

__all__ = ["PAGE", "Candidate", "Dropped", "HistoryPlans", "Stored"]

#: Messages per page when finding old messages or reading bodies.
PAGE = 500


@dataclass(frozen=True, slots=True)
class Candidate:
    """An old message that purge or archive may remove.

    Attributes:
        ref: What the removing script is given: the ``msgs`` member, or the entry id.
        id: The message id.
        body: The stored body (empty when it was not asked for).
        location: Where it is (see ``ArchivedMessage.location``).
        unacknowledged: Some consumer has not finished it.
    """

    ref: str
    id: str
    body: bytes
    location: str
    unacknowledged: bool


@dataclass(frozen=True, slots=True)
class Dropped:
    """What removing a page did.

    Attributes:
        acknowledged: Messages deleted that every consumer group had acknowledged.
        unacknowledged: Messages deleted that some consumer had not finished.
        kept: The refs of those left alone (no longer where they were found, or, without
            force, no longer acknowledged by every group).
    """

    acknowledged: int
    unacknowledged: int
    kept: set[str]


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored body replay reads: the message id and its decoded fields."""

    id: str
    fields: dict[str, Any]


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class HistoryPlans:
    """The plans of one queue's history.

    Args:
        keys: The queue's keys.
        shape: Its driver, levels and default priority.
    """

    def __init__(self, keys: QueueKeys, shape: QueueShape) -> None:
        self.keys = keys
        self.is_stream = shape.driver == "stream"
        self._keys = keys.script_keys()
        self._head: list[Any] = [shape.driver, shape.default_priority, len(keys.priorities)]
        self._head.extend(keys.priorities)

    def _call(self, script: str, args: Sequence[Any]) -> Call:
        return Call(script, self._keys, [*self._head, *args])

    @staticmethod
    def now_ms() -> Plan[int]:
        """The Redis clock, in Unix milliseconds."""
        seconds, micros = yield Command("time")
        return int(seconds) * 1000 + int(micros) // 1000

    # --- bodies in the msgs hash: ready (not streams) and delayed -------------------

    def stored(
        self, cursor: str, cutoff_ms: int, bodies: bool
    ) -> Plan[tuple[str, list[Candidate]]]:
        """One page of old stored messages no consumer has, from HSCAN ``cursor``
        (``"0"`` first); returns the next cursor (``"0"``: done) and the page."""
        args = ["scan", cursor, PAGE, cutoff_ms, "1" if bodies else ""]
        reply = yield self._call("purge.lua", args)
        page = []
        for i in range(1, len(reply), 3):
            ref = as_str(reply[i])
            message_id = ref.partition("|")[0] if self.is_stream else ref
            page.append(
                Candidate(ref, message_id, _as_bytes(reply[i + 1]), as_str(reply[i + 2]), True)
            )
        return as_str(reply[0]), page

    def drop_stored(self, page: Sequence[Candidate]) -> Plan[Dropped]:
        """Delete these stored messages (none acknowledged) where they still are."""
        if not page:
            return Dropped(0, 0, set())
        args: list[Any] = ["delete"]
        for candidate in page:
            args.extend((candidate.ref, candidate.location))
        reply = yield self._call("purge.lua", args)
        return Dropped(0, int(reply[0]), {as_str(ref) for ref in reply[1:]})

    # --- stream entries -------------------------------------------------------------

    def trim(self, cutoff_ms: int) -> Plan[int]:
        """Delete old entries every group has acknowledged (``XTRIM MINID``)."""
        return int((yield self._call("stream_purge.lua", ["trim", cutoff_ms])))

    def entries(
        self, priority: int, start: str, cutoff_ms: int, force: bool, bodies: bool
    ) -> Plan[list[Candidate]]:
        """One page of old entries of ``priority``'s stream after ``start`` (``"-"``
        first, then ``"(<last entry id>"``): acknowledged by every group, or any with
        ``force``."""
        flags = ["1" if force else "", "1" if bodies else ""]
        args = ["scan", priority, start, PAGE, cutoff_ms, *flags]
        reply = yield self._call("stream_purge.lua", args)
        return [
            Candidate(
                as_str(reply[i]),
                as_str(reply[i + 1]),
                _as_bytes(reply[i + 2]),
                f"stream:{priority}:{as_str(reply[i])}",
                as_str(reply[i + 3]) == "1",
            )
            for i in range(0, len(reply), 4)
        ]

    def drop_entries(self, priority: int, page: Sequence[Candidate], force: bool) -> Plan[Dropped]:
        """Delete these entries of ``priority``'s stream (unacknowledged ones only with
        ``force``)."""
        if not page:
            return Dropped(0, 0, set())
        args = ["delete", priority, "1" if force else "", *(c.ref for c in page)]
        reply = yield self._call("stream_purge.lua", args)
        return Dropped(int(reply[0]), int(reply[1]), {as_str(ref) for ref in reply[2:]})

    # --- what replay reads ----------------------------------------------------------

    def with_identifier(self, identifier: str, codec: BodyCodec) -> Plan[list[Stored]]:
        """Every stored message (stream entries, and bodies in ``msgs``: ready,
        delayed, processing, held, failed) sent with ``identifier``; a message stored
        twice (a stream retry, a group's copy) is listed once."""
        found: dict[str, Stored] = {}

        def keep(message_id: str, body: Any) -> None:
            if message_id in found or body is None:
                return
            try:
                fields = codec.decode(_as_bytes(body))
            except DecodeError:
                return
            if fields.get("identifier") == identifier:
                found[message_id] = Stored(message_id, fields)

        if self.is_stream:
            for priority in self.keys.priorities:
                cursor = "-"
                while True:
                    page = yield Command("xrange", (self.keys.ready(priority), cursor, "+", PAGE))
                    for entry_id, fields in page or []:
                        keep(as_str(fields.get(b"i", entry_id)), fields.get(b"m"))
                    if len(page or []) < PAGE:
                        break
                    cursor = "(" + as_str(page[-1][0])
        cursor = "0"
        while True:
            cursor, chunk = yield Command("hscan", (self.keys.key("msgs"), cursor, None, PAGE))
            for member, body in chunk.items():
                ref = as_str(member)
                keep(ref.partition("|")[0] if self.is_stream else ref, body)
            if int(cursor) == 0:
                return list(found.values())
