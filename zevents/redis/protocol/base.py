"""What every driver shares: the queue scripts' KEYS and ARGV, sending, the failed store.

Sans-I/O: methods return plans (see ``steps``); nothing here touches a socket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from zevents.errors import DecodeError
from zevents.redis.keys import QueueKeys
from zevents.redis.message import BodyCodec, FailedMessage, Reclaimed, Taken, failed_entry
from zevents.redis.protocol.steps import Batch, Call, Command, Plan, single, time_ms

__all__ = [
    "QUEUE_BATCH",
    "TAKE_MAX",
    "BaseDriver",
    "Done",
    "Driver",
    "Finished",
    "Reader",
    "SendItem",
    "as_str",
    "as_strs",
]

#: Messages per script call in ``send_many`` (all calls go in one pipeline).
QUEUE_BATCH = 1000
#: Messages one ``take`` leases at most: the take script passes two arguments per
#: message to one Redis call, and Redis' Lua stack holds about 8,000.
TAKE_MAX = 3000
#: Plain messages in a ``send_many`` from which the batch is stamped with one ``TIME``.
STAMP_ONCE = 16
#: The identifier and serial group of a message ('' for none): what the settling
#: scripts release when it finishes.
Fields = tuple[str, str]
#: Messages to acknowledge, each with its ``Fields``.
Done = Sequence[tuple[Taken, Fields]]


def as_str(value: Any) -> str:
    """A reply item as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def as_strs(reply: Any) -> list[str]:
    """A list reply (or nil) as texts."""
    return [as_str(item) for item in reply or []]


@dataclass(frozen=True, slots=True)
class SendItem:
    """One message to enqueue, encoded."""

    body: bytes
    priority: int
    id: str = ""
    delay_ms: int = 0
    execute_at_ms: int | None = None
    identifier: str | None = None
    unique: bool = False
    serial_group: str | None = None

    @property
    def is_plain(self) -> bool:
        """Whether it needs none of the options only ``send.lua`` handles."""
        return not (
            self.delay_ms
            or self.execute_at_ms is not None
            or self.identifier is not None
            or self.serial_group is not None
        )

    def args(self) -> list[Any]:
        """The 8 script arguments of this message (see ``send.lua``)."""
        return [
            self.id,
            self.body,
            self.priority,
            self.delay_ms,
            "" if self.execute_at_ms is None else self.execute_at_ms,
            self.identifier or "",
            "1" if self.unique else "",
            self.serial_group or "",
        ]


@dataclass(frozen=True, slots=True)
class Reader:
    """Who takes messages, and how: what the consuming side of a driver is given.

    Attributes:
        name: The consumer name: the stream driver's owner of pending entries (the
            other drivers fence with lease tokens and ignore it).
        lease_ms: How long a taken message stays leased without a renewal.
        levels: The priority levels taken from, highest first.
    """

    name: str
    lease_ms: int
    levels: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Finished:
    """Records of finished messages, kept with their acknowledgement (``keep_finished``).

    Attributes:
        key: The sorted set holding them, scored by finish time.
        keep_ms: How long a record is kept; older ones are trimmed by the same call.
        records: One JSON object per acknowledged item, in the same order (``b""``: none).
    """

    key: str
    keep_ms: int
    records: Sequence[bytes]

    @classmethod
    def kept(
        cls, key: str, keep_seconds: float | None, records: Sequence[bytes] | None
    ) -> Finished | None:
        """The records an acknowledgement writes to ``key``: None when its consumer
        keeps none (``keep_seconds`` None) or none were built."""
        if records is None or keep_seconds is None:
            return None
        return cls(key, int(keep_seconds * 1000), records)


class Driver(Protocol):
    """How a queue stores, hands out and settles messages (one per Redis structure).

    Every method returns a plan; a front end (sync or asyncio) runs it. The
    consuming methods are given the ``Reader`` they act for.
    """

    name: str
    keys: QueueKeys
    #: Whether ``reclaim`` leases what it recovers to its reader and returns it (streams)
    #: rather than putting it back in line for the next ``take``.
    reclaims_to_reader: bool

    def prepare(self) -> Plan[None]:
        """Whatever the driver needs before its first use (a consumer group)."""
        ...

    def send(self, items: Sequence[SendItem]) -> Plan[list[str]]:
        """Enqueue ``items`` in one round trip; returns their ids."""
        ...

    def send_many(self, items: Sequence[SendItem]) -> Plan[list[str]]:
        """Enqueue any number of items: one script per ``QUEUE_BATCH``, one pipeline."""
        ...

    def take(self, reader: Reader, count: int) -> Plan[list[Taken]]:
        """Lease up to ``count`` due messages (at most ``TAKE_MAX``), highest priority
        first."""
        ...

    def reclaim(
        self, reader: Reader, max_attempts: int, resume: Mapping[int, str] | None = None
    ) -> Plan[Reclaimed]:
        """Recover messages of dead workers (failing those past ``max_attempts``), as
        many as one call may; returns any now leased to ``reader``, and whether it
        stopped at that limit (``Reclaimed.more``). ``resume`` is the last call's
        ``Reclaimed.resume`` (streams scan their pending lists a part at a time)."""
        ...

    def ack(self, reader: Reader, done: Done, finished: Finished | None = None) -> Plan[list[str]]:
        """Finish ``(taken, fields)`` items, storing ``finished``'s records of those
        acknowledged in the same call; returns the ids whose lease was lost (not
        acknowledged)."""
        ...

    def retry(self, reader: Reader, taken: Taken, delay_ms: int, count: bool) -> Plan[bool]:
        """Put a message back, due after ``delay_ms`` (``count``: count the attempt);
        False if its lease was lost."""
        ...

    def fail(self, reader: Reader, taken: Taken, record: bytes, fields: Fields) -> Plan[bool]:
        """Move a message to the failed store; False if its lease was lost."""
        ...

    def touch(self, reader: Reader, taken: Sequence[Taken]) -> Plan[list[str]]:
        """Renew leases; returns the ids whose lease was lost."""
        ...

    def release(self, reader: Reader, taken: Sequence[Taken]) -> Plan[int]:
        """Give back messages that were taken but never started."""
        ...

    def leave(self, reader: Reader) -> Plan[None]:
        """``reader`` stopped: drop per-consumer state it no longer needs."""
        ...

    def stats(self) -> Plan[dict[str, Any]]:
        """``ready`` per priority, ``delayed``, ``processing``, ``serial``, ``failed``,
        ``statuses``."""
        ...

    def failed(self) -> Plan[list[FailedMessage]]:
        """The failed store, oldest failure first."""
        ...

    def retry_failed(self, entries: Sequence[FailedMessage]) -> Plan[int]:
        """Put these failed messages back; returns how many."""
        ...

    def flush_failed(self) -> Plan[int]:
        """Empty the failed store; returns how many messages were dropped."""
        ...

    def unfinished(self, identifiers: Sequence[str]) -> Plan[set[str]]:
        """The identifiers with a message still queued, delayed or processing."""
        ...

    def set_status(self, message_id: str, value: bytes) -> Plan[None]:
        """Store a receiver's ``{"status", "percent"}`` of a message."""
        ...


class BaseDriver:
    """The parts of ``Driver`` that are the same for every Redis structure.

    Args:
        keys: The queue's keys.
        kind: The driver name (the ``KIND`` the scripts switch on).
        default_priority: The level of messages that name none.
        codec: Decodes stored bodies for the failed store.
    """

    name: str
    reclaims_to_reader = False

    def __init__(self, keys: QueueKeys, kind: str, default_priority: int, codec: BodyCodec) -> None:
        self.name = kind
        self.keys = keys
        self.codec = codec
        self._keys = keys.script_keys()
        self._head: list[Any] = [kind, default_priority, len(keys.priorities), *keys.priorities]
        self._plain_keys = {
            p: [keys.key("msgs"), keys.key("seq"), keys.ready(p)] for p in keys.priorities
        }
        self._many_keys = [keys.key("msgs"), keys.key("seq")] + [
            keys.ready(p) for p in keys.priorities
        ]
        self._many_index = {p: str(i + 1) for i, p in enumerate(keys.priorities)}

    def call(self, script: str, args: Sequence[Any] = (), more_keys: Sequence[str] = ()) -> Call:
        """A queue script with the queue's KEYS (then ``more_keys``) and leading ARGV
        (see ``lib.lua``)."""
        return Call(script, [*self._keys, *more_keys], [*self._head, *args])

    # --- sending --------------------------------------------------------------------

    def _send_call(self, items: Sequence[SendItem], now_ms: int | None, plain: bool) -> Call:
        """The script call that enqueues ``items`` (``plain``: all of them are);
        ``now_ms`` (the Redis clock, read once for the batch) stamps plain bodies here
        instead of in the script."""
        if len(items) == 1 and plain:
            # The lean script takes only the three keys it writes: the hot path of send.
            item = items[0]
            return Call(
                "send_plain.lua", self._plain_keys[item.priority], (self.name, item.id, item.body)
            )
        if plain:
            return self._plain_many_call(items, now_ms)
        args = []
        for item in items:
            args.extend(item.args())
        return self.call("send.lua", args)

    def _plain_many_call(self, items: Sequence[SendItem], now_ms: int | None) -> Call:
        """``send_plain_many.lua`` for plain ``items``: runs of one priority (its ready
        key number, the run's length, then each message's body, preceded by its id when
        the driver gives ids), so a message costs the script one argument, not three."""
        index = self._many_index
        stamp = b"" if now_ms is None else b',"enqueued_at":%d}' % now_ms
        given = any(item.id for item in items)
        args: list[Any] = [self.name, "" if now_ms is None else now_ms, "1" if given else "0"]
        key, count_at = "", 0
        for item in items:
            if index[item.priority] != key:
                key = index[item.priority]
                args += (key, 0)
                count_at = len(args) - 1
            args[count_at] += 1
            if given:
                args.append(item.id)
            args.append(item.body[:-1] + stamp if stamp else item.body)
        return Call("send_plain_many.lua", self._many_keys, args)

    @staticmethod
    def _ids(items: Sequence[SendItem], reply: Any, plain: bool) -> list[str]:
        """The ids a send script returned for ``items``: ``send_plain_many.lua`` returns
        the clock and the first sequence number of the ids it made (``now-seq``), or,
        given the ids (the set driver's content hashes), only how many it queued."""
        if len(items) == 1 and plain:
            return [as_str(reply)]
        if plain:
            if isinstance(reply, int):
                return [item.id for item in items]
            prefix, first = as_str(reply[0]), int(reply[1])
            return [f"{prefix}-{first + i}" for i in range(1, len(items) + 1)]
        return as_strs(reply)

    def send(self, items: Sequence[SendItem]) -> Plan[list[str]]:
        """Enqueue up to ``QUEUE_BATCH`` items in one script call; returns their ids."""
        return (yield from self._send(items, None, all(item.is_plain for item in items)))

    def _send(self, items: Sequence[SendItem], now_ms: int | None, plain: bool) -> Plan[list[str]]:
        return self._ids(items, (yield self._send_call(items, now_ms, plain)), plain)

    def send_many(self, items: Sequence[SendItem]) -> Plan[list[str]]:
        """Enqueue any number of items: one script per ``QUEUE_BATCH``, one pipeline.

        A batch of at least ``STAMP_ONCE`` plain messages reads the Redis clock first
        (``TIME``) and is stamped with it here: a splice into each body inside the
        script costs more than the round trip (Lua interns every string it makes, and
        bodies alike but for a few bytes collide in its string table)."""
        now_ms = None
        plain = all(item.is_plain for item in items)
        if len(items) >= STAMP_ONCE and plain:
            now_ms = yield from time_ms()
        if len(items) <= QUEUE_BATCH:
            return (yield from self._send(items, now_ms, plain))
        chunks = [items[i : i + QUEUE_BATCH] for i in range(0, len(items), QUEUE_BATCH)]
        replies = yield Batch([self._send_call(chunk, now_ms, plain) for chunk in chunks])
        return [
            i
            for chunk, reply in zip(chunks, replies, strict=True)
            for i in self._ids(chunk, reply, plain)
        ]

    # --- the failed store, statuses, identifiers ------------------------------------

    def failed(self) -> Plan[list[FailedMessage]]:
        """The failed store, oldest failure first."""
        records = yield Command("hgetall", (self.keys.key("failed"),))
        ids = list(records)
        bodies = (yield Command("hmget", (self.keys.key("msgs"), ids))) if ids else []
        out = [
            failed_entry(
                as_str(k),
                _as_bytes(records[k]),
                None if body is None else _as_bytes(body),
                self.codec,
            )
            for k, body in zip(ids, bodies, strict=True)
        ]
        out.sort(key=lambda f: (f.failed_at, f.id))
        return out

    def _retry_failed_args(self, entry: FailedMessage) -> Sequence[Any]:
        return (entry.id, entry.id, "")

    def retry_failed(self, entries: Sequence[FailedMessage]) -> Plan[int]:
        """Put these failed messages back, each at the priority its body names."""
        args: list[Any] = []
        for entry in entries:
            args.extend(self._retry_failed_args(entry))
        if not args:
            return 0
        return (yield from single(self.call("retry_failed.lua", args), int))

    def flush_failed(self) -> Plan[int]:
        """Empty the failed store; returns how many messages were dropped."""
        key = self.keys.key("failed")
        ids = list((yield Command("hkeys", (key,))))
        if not ids:
            return 0
        replies = yield Batch(
            [Command("hdel", (key, *ids)), Command("hdel", (self.keys.key("msgs"), *ids))]
        )
        return int(replies[0])

    def unfinished(self, identifiers: Sequence[str]) -> Plan[set[str]]:
        """The identifiers with a message still queued, delayed or processing."""
        if not identifiers:
            return set()
        counts = yield Command("hmget", (self.keys.key("idents"), list(identifiers)))
        return {
            ident
            for ident, n in zip(identifiers, counts, strict=True)
            if n is not None and int(n) > 0
        }

    def set_status(self, message_id: str, value: bytes) -> Plan[None]:
        """Store a receiver's ``{"status", "percent"}`` of a message."""
        yield Command("hset", (self.keys.key("status"), message_id, value))

    def _common_counts(self) -> list[Command]:
        """The counting commands every driver's stats end with."""
        keys = self.keys
        return [
            Command("zcard", (keys.key("delayed"),)),
            Command("zcard", (keys.key("serial"),)),
            Command("hlen", (keys.key("failed"),)),
            Command("hgetall", (keys.key("status"),)),
        ]

    @staticmethod
    def _stats(
        ready: Mapping[int, int],
        processing: int,
        common: Sequence[Any],
        oldest_ready_at: float | None,
    ) -> dict[str, Any]:
        """The stats dict, in its documented order, from ``_common_counts`` replies."""
        delayed, serial, failed, statuses = common
        return {
            "ready": dict(ready),
            "delayed": int(delayed),
            "processing": processing,
            "serial": int(serial),
            "failed": int(failed),
            "statuses": {as_str(k): orjson.loads(v) for k, v in statuses.items()},
            "oldest_ready_at": oldest_ready_at,
        }

    def _enqueued_at(self, bodies: Sequence[Any]) -> float | None:
        """The earliest ``enqueued_at`` (Unix seconds) among stored bodies, if any."""
        times: list[float] = []
        for body in bodies:
            if body is None:
                continue
            try:
                stamp = self.codec.decode(_as_bytes(body)).get("enqueued_at")
            except DecodeError:
                continue
            if isinstance(stamp, (int, float)):
                times.append(stamp / 1000.0)
        return min(times, default=None)
