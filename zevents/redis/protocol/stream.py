"""The stream driver: one Redis stream per priority, read by consumer groups.

Every consumer group of a queue gets every message (fan-out); the consumers of one
group share them. A delivered entry stays in the group's pending list until a worker
acknowledges it, so the lease is the entry's idle time: workers renew it with
``XCLAIM ... JUSTID`` and take over entries idle past ``keep_alive`` with
``XAUTOCLAIM``. A retry is a new entry tagged with its group (other groups skip it), so
the other groups do not see it twice. A serial-group message gets one chain and one
tagged entry per consumer group, so each group runs the serial group in order on its own.
Entries are trimmed (``XTRIM MINID``) only below the oldest entry some group has not
acknowledged. A group that disappears (a Redis restart without persistence) is created
again by the next take or reclaim. Sans-I/O: every method returns a plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zevents.errors import ConfigError
from zevents.redis.keys import QueueKeys
from zevents.redis.message import BodyCodec, FailedMessage, Reclaimed, Taken
from zevents.redis.protocol.base import BaseDriver, Done, Fields, Finished, Reader, as_str, as_strs
from zevents.redis.protocol.steps import Batch, Command, Plan, single

__all__ = ["StreamDriver"]

# Entries per XRANGE call when stats() counts the unread part of a stream.
PAGE = 1000
# Entries one XAUTOCLAIM may claim per priority.
_RECLAIM_COUNT = 100


def _entries(reply: Sequence[Any]) -> list[Taken]:
    """Take and reclaim replies: entry id, id, body, attempt, priority per message."""
    return [
        Taken(
            as_str(reply[i + 1]),
            reply[i + 2],
            int(reply[i + 3]),
            int(reply[i + 4]),
            as_str(reply[i]),
        )
        for i in range(0, len(reply), 5)
    ]


def _reclaimed(reply: Sequence[Any], levels: Sequence[int]) -> Reclaimed:
    """A reclaim's reply: 1 if some level claimed ``_RECLAIM_COUNT``, the next cursor
    of each level (``''``: skipped), then the entries as ``_entries`` reads them.

    A pass scans every level's pending list to its end, a part per call; ``resume``
    says where each goes on, ``''`` for a level done while others are not. Once every
    level is done ``resume`` is empty: the next call starts a new pass. ``more``: the
    pass is not over, or a level claimed as many as a call may.
    """
    n = len(levels)
    reclaimed = Reclaimed(_entries(reply[1 + n :]))
    cursors = [as_str(c) for c in reply[1 : 1 + n]]
    going = {p: c for p, c in zip(levels, cursors, strict=True) if c not in ("0-0", "")}
    if going:
        reclaimed.resume = {p: going.get(p, "") for p in levels}
    reclaimed.more = bool(going) or int(reply[0]) == 1
    return reclaimed


class StreamDriver(BaseDriver):
    """A driver over Redis streams with consumer groups.

    Args:
        keys: The queue's keys.
        default_priority: The level of messages that name none.
        codec: Decodes stored bodies for the failed store.
        group: The consumer group this queue object reads as.
        max_reclaims: Claims of a silent consumer's entry before it fails.
    """

    reclaims_to_reader = True

    def __init__(
        self,
        keys: QueueKeys,
        default_priority: int,
        codec: BodyCodec,
        group: str,
        max_reclaims: int,
    ) -> None:
        super().__init__(keys, "stream", default_priority, codec)
        self.group = group
        self.max_reclaims = max_reclaims

    def prepare(self) -> Plan[None]:
        """Create the group on every priority stream (from the start), if missing."""
        yield self.call("stream_group.lua", [self.group])

    def take(self, reader: Reader, count: int) -> Plan[list[Taken]]:
        args = [self.group, reader.name, count, len(reader.levels), *reader.levels]
        return (yield from single(self.call("stream_take.lua", args), _entries))

    def reclaim(
        self, reader: Reader, max_attempts: int, resume: Mapping[int, str] | None = None
    ) -> Plan[Reclaimed]:
        levels = reader.levels
        start = resume or {}
        args = [self.group, reader.name, reader.lease_ms, self.max_reclaims, max_attempts]
        args += [_RECLAIM_COUNT, len(levels), *levels, *(start.get(p, "0-0") for p in levels)]
        reply = yield self.call("stream_reclaim.lua", args)
        return _reclaimed(reply, levels)

    def ack(self, reader: Reader, done: Done, finished: Finished | None = None) -> Plan[list[str]]:
        args: list[Any] = [self.group, reader.name]
        more_keys: list[str] = []
        records: Sequence[bytes] = [b""] * len(done)
        if finished is not None:
            args.append(finished.keep_ms)
            more_keys, records = [finished.key], finished.records
        for (taken, (identifier, serial)), record in zip(done, records, strict=True):
            args.extend((taken.priority, taken.token, taken.id, identifier, serial))
            if finished is not None:
                args.append(record)
        lost = set(as_strs((yield self.call("stream_ack.lua", args, more_keys))))
        return [taken.id for taken, _ in done if taken.token in lost]

    def _settle(self, mode: str, reader: Reader, taken: Taken, *rest: Any) -> Plan[bool]:
        args = [mode, self.group, reader.name, taken.priority, taken.token, taken.id, taken.body]
        return (yield from single(self.call("stream_settle.lua", [*args, *rest]), bool))

    def retry(self, reader: Reader, taken: Taken, delay_ms: int, count: bool) -> Plan[bool]:
        done = taken.attempt if count else taken.attempt - 1
        return (yield from self._settle("retry", reader, taken, done, delay_ms))

    def fail(self, reader: Reader, taken: Taken, record: bytes, fields: Fields) -> Plan[bool]:
        return (yield from self._settle("fail", reader, taken, record, *fields))

    def touch(self, reader: Reader, taken: Sequence[Taken]) -> Plan[list[str]]:
        args: list[Any] = [self.group, reader.name]
        for t in taken:
            args.extend((t.priority, t.token))
        lost = set(as_strs((yield self.call("stream_touch.lua", args))))
        return [t.id for t in taken if t.token in lost]

    def release(self, reader: Reader, taken: Sequence[Taken]) -> Plan[int]:
        if not taken:
            return 0
        args: list[Any] = [self.group, reader.name, reader.lease_ms + 1000]
        for t in taken:
            args.extend((t.priority, t.token))
        return (yield from single(self.call("stream_release.lua", args), int))

    def leave(self, reader: Reader) -> Plan[None]:
        """Remove the reader's consumer from the group where it holds no pending entry."""
        yield self.call("stream_leave.lua", [self.group, reader.name])

    def _retry_failed_args(self, entry: FailedMessage) -> Sequence[Any]:
        msg_id, _, group = entry.id.partition("|")
        return (entry.id, msg_id or entry.id, group)

    def stats(self) -> Plan[dict[str, Any]]:
        keys = self.keys
        exists = [Command("exists", (keys.ready(p),)) for p in keys.priorities]
        replies = yield Batch([*exists, *self._common_counts()])
        n = len(keys.priorities)
        streams = [p for p, found in zip(keys.priorities, replies[:n], strict=True) if found]
        infos = yield Batch([Command("xinfo_groups", (keys.ready(p),)) for p in streams])
        groups_of = dict(zip(streams, infos, strict=True))
        names = {as_str(g["name"]) for groups in infos for g in groups}
        if names and self.group not in names:
            # other groups read this stream: a typo would otherwise read as an empty queue
            raise ConfigError(
                f"queue {keys.name!r} has no consumer group {self.group!r} (its groups: "
                f"{', '.join(sorted(names))})",
                option="group",
            )
        ready: dict[int, int] = {}
        processing = 0
        firsts: list[Any] = []
        for p in keys.priorities:
            groups = groups_of.get(p, [])
            mine = next((g for g in groups if as_str(g["name"]) == self.group), None)
            ready[p] = 0
            if mine is not None:
                processing += int(mine["pending"])
                ready[p], first = yield from self._unread(keys.ready(p), mine["last-delivered-id"])
                if first is not None:
                    firsts.append(first)
        return self._stats(ready, processing, replies[n:], self._enqueued_at(firsts))

    def _unread(self, key: str, last_delivered: Any) -> Plan[tuple[int, Any]]:
        """How many entries after ``last_delivered`` are for this group, and the body of
        the first of them; read in pages so a long backlog never makes one huge reply."""
        cursor = "(" + as_str(last_delivered)
        mine = (None, self.group.encode())
        count, first = 0, None
        while True:
            page = (yield Command("xrange", (key, cursor, "+", PAGE))) or []
            for _, fields in page:
                if fields is None or fields.get(b"g") in mine:
                    if first is None and fields is not None:
                        first = fields.get(b"m")
                    count += 1
            if len(page) < PAGE:
                return count, first
            cursor = "(" + as_str(page[-1][0])
