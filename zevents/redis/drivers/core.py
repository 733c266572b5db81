"""The list, sorted-set and set drivers: ids in ready structures, bodies in a hash.

All three share one set of Lua scripts (``lua/*.lua``); only the ready structure differs:

* ``list``: one list per priority (``LPOP`` many); FIFO, due messages join the tail.
* ``sorted-set``: one sorted set per priority scored by enqueue sequence; due and
  retried messages take their original place.
* ``set``: one set per priority (``SPOP`` many); unordered, duplicates are one message.

A taken message is leased atomically in the same script: its id goes to the
``processing`` sorted set scored by the lease deadline (Redis time) and its lease token to
``leases``; ``reclaim.lua`` returns expired ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zevents.redis._client import as_str
from zevents.redis.drivers.base import ScriptRunner, SendItem, ident_and_serial, text_field
from zevents.redis.message import Taken

__all__ = ["CoreDriver"]


class CoreDriver:
    """A driver over lists, sorted sets or sets (``kind``)."""

    def __init__(self, runner: ScriptRunner, kind: str) -> None:
        self.runner = runner
        self.name = kind

    def send(self, items: Sequence[SendItem]) -> list[str]:
        if len(items) == 1 and items[0].is_plain:
            return [as_str(self.runner.send_plain(items[0]))]
        args: list[Any] = []
        for item in items:
            args.extend(item.args())
        return [as_str(i) for i in self.runner("send.lua", args)]

    def take(self, count: int, lease_ms: int, priorities: Sequence[int]) -> list[Taken]:
        reply = self.runner("take.lua", [count, lease_ms, len(priorities), *priorities])
        token = as_str(reply[0])
        return [
            Taken(as_str(reply[i]), reply[i + 1], int(reply[i + 2]), int(reply[i + 3]), token)
            for i in range(1, len(reply), 4)
        ]

    def reclaim(
        self, lease_ms: int, max_attempts: int, max_reclaims: int, priorities: Sequence[int]
    ) -> list[Taken]:
        self.runner("reclaim.lua", [max_attempts])
        return []

    def ack(self, taken: Sequence[Taken], pipe: Any = None) -> list[str]:
        args: list[Any] = []
        for t in taken:
            args.extend((t.id, t.token, *ident_and_serial(t)))
        return [as_str(i) for i in self.runner("ack.lua", args, client=pipe) or []]

    def retry(self, taken: Taken, delay_ms: int, *, count_attempt: bool) -> bool:
        args = [taken.id, taken.token, delay_ms, "1" if count_attempt else "0"]
        return bool(self.runner("retry.lua", args))

    def fail(self, taken: Taken, record: bytes, identifier: str | None, serial: str | None) -> bool:
        args = [taken.id, taken.token, record, identifier or "", serial or ""]
        return bool(self.runner("fail.lua", args))

    def touch(self, taken: Sequence[Taken], lease_ms: int) -> list[str]:
        args: list[Any] = [lease_ms]
        for t in taken:
            args.extend((t.id, t.token))
        return [as_str(i) for i in self.runner("touch.lua", args)]

    def release(self, taken: Sequence[Taken], lease_ms: int) -> None:
        args: list[Any] = []
        for t in reversed(taken):  # pushed to the head one by one: keep their order
            args.extend((t.id, t.token, t.priority))
        if args:
            self.runner("release.lua", args)

    def leave(self) -> None:
        """Nothing to do: these drivers keep no per-consumer state."""

    def counts(self) -> dict[str, Any]:
        keys = self.runner.keys
        pipe = self.runner.client.pipeline(transaction=False)
        size = {"list": pipe.llen, "sorted-set": pipe.zcard, "set": pipe.scard}[self.name]
        for p in keys.priorities:
            size(keys.ready(p))
        pipe.zcard(keys.key("delayed"))
        pipe.zcard(keys.key("processing"))
        pipe.zcard(keys.key("serial"))
        reply = pipe.execute()
        n = len(keys.priorities)
        return {
            "ready": {p: int(reply[i]) for i, p in enumerate(keys.priorities)},
            "delayed": int(reply[n]),
            "processing": int(reply[n + 1]),
            "serial": int(reply[n + 2]),
        }

    def retry_failed_args(self, key: str, fields: dict[str, Any], priority: int) -> list[Any]:
        return [
            key,
            key,
            priority,
            text_field(fields.get("identifier")),
            "",
            text_field(fields.get("serial_group")),
        ]
