"""The stream driver: one Redis stream per priority, read by consumer groups.

Every consumer group of a queue gets every message (fan-out); the consumers of one
group share them. A delivered entry stays in the group's pending list until a worker
acknowledges it, so the lease is the entry's idle time: workers renew it with
``XCLAIM ... JUSTID`` and take over entries idle past ``keep_alive`` with
``XAUTOCLAIM``. A retry is a new entry tagged with its group (other groups skip it), so
the other groups do not see it twice. A serial-group message gets one chain and one
tagged entry per consumer group, so each group runs the serial group in order on its own.
Entries are trimmed (``XTRIM MINID``) only below the oldest entry some group has not
acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from zevents.redis._client import as_str
from zevents.redis.drivers.base import ScriptRunner, SendItem, ident_and_serial, text_field
from zevents.redis.message import Taken

__all__ = ["StreamDriver"]

# Entries per XRANGE call when stats() counts the unread part of a stream.
_PAGE = 1000


class StreamDriver:
    """A driver over Redis streams with consumer groups.

    Args:
        runner: The queue's script runner.
        group: The consumer group this queue object reads as.
        consumer: The consumer name inside the group.
    """

    name = "stream"

    def __init__(self, runner: ScriptRunner, group: str, consumer: str) -> None:
        self.runner = runner
        self.group = group
        self.consumer = consumer

    def create_group(self) -> None:
        """Create the group on every priority stream (from the start), if missing."""
        client = self.runner.client
        for p in self.runner.keys.priorities:
            try:
                client.xgroup_create(self.runner.keys.ready(p), self.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def send(self, items: Sequence[SendItem]) -> list[str]:
        if len(items) == 1 and items[0].is_plain:
            return [as_str(self.runner.send_plain(items[0]))]
        args: list[Any] = []
        for item in items:
            args.extend(item.args())
        return [as_str(i) for i in self.runner("send.lua", args)]

    def _entries(self, reply: Sequence[Any]) -> list[Taken]:
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

    def _run(self, name: str, args: list[Any]) -> Any:
        try:
            return self.runner(name, args)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        # The stream or group is gone (a Redis restart without persistence, FLUSHALL,
        # XGROUP DESTROY): create it again, from the start of whatever the stream holds.
        self.create_group()
        return self.runner(name, args)

    def take(self, count: int, lease_ms: int, priorities: Sequence[int]) -> list[Taken]:
        args = [self.group, self.consumer, count, len(priorities), *priorities]
        return self._entries(self._run("stream_take.lua", args))

    def reclaim(
        self, lease_ms: int, max_attempts: int, max_reclaims: int, priorities: Sequence[int]
    ) -> list[Taken]:
        args = [
            self.group,
            self.consumer,
            lease_ms,
            max_reclaims,
            max_attempts,
            100,
            len(priorities),
            *priorities,
        ]
        return self._entries(self._run("stream_reclaim.lua", args))

    def ack(self, taken: Sequence[Taken], pipe: Any = None) -> list[str]:
        args: list[Any] = [self.group, self.consumer]
        for t in taken:
            args.extend((t.priority, t.token, t.id, *ident_and_serial(t)))
        lost = {as_str(i) for i in self.runner("stream_ack.lua", args, client=pipe) or []}
        return [t.id for t in taken if t.token in lost]

    def retry(self, taken: Taken, delay_ms: int, *, count_attempt: bool) -> bool:
        done = taken.attempt if count_attempt else taken.attempt - 1
        args = [self.group, self.consumer, taken.priority, taken.token, taken.id, taken.body]
        return bool(self.runner("stream_retry.lua", [*args, done, delay_ms]))

    def fail(self, taken: Taken, record: bytes, identifier: str | None, serial: str | None) -> bool:
        args = [self.group, self.consumer, taken.priority, taken.token, taken.id, taken.body]
        return bool(self.runner("stream_fail.lua", [*args, record, identifier or "", serial or ""]))

    def touch(self, taken: Sequence[Taken], lease_ms: int) -> list[str]:
        args: list[Any] = [self.group, self.consumer]
        for t in taken:
            args.extend((t.priority, t.token))
        lost = {as_str(i) for i in self.runner("stream_touch.lua", args)}
        return [t.id for t in taken if t.token in lost]

    def release(self, taken: Sequence[Taken], lease_ms: int) -> None:
        args: list[Any] = [self.group, self.consumer, lease_ms + 1000]
        for t in taken:
            args.extend((t.priority, t.token))
        if taken:
            self.runner("stream_release.lua", args)

    def leave(self) -> None:
        """Remove this consumer from the group where it holds no pending entry."""
        self.runner("stream_leave.lua", [self.group, self.consumer])

    def counts(self) -> dict[str, Any]:
        client = self.runner.client
        keys = self.runner.keys
        ready: dict[int, int] = {}
        processing = 0
        for p in keys.priorities:
            key = keys.ready(p)
            info = {as_str(g["name"]): g for g in client.xinfo_groups(key)}
            group = info.get(self.group)
            if group is None:
                ready[p] = 0
                continue
            processing += int(group["pending"])
            cursor = "(" + as_str(group["last-delivered-id"])
            mine = (None, self.group.encode())
            ready[p] = 0
            while True:  # in pages, so a long backlog never makes one huge reply
                page = client.xrange(key, min=cursor, count=_PAGE) or []
                for _, fields in page:
                    if fields is None or fields.get(b"g") in mine:
                        ready[p] += 1
                if len(page) < _PAGE:
                    break
                cursor = "(" + as_str(page[-1][0])
        return {
            "ready": ready,
            "delayed": int(client.zcard(keys.key("delayed"))),
            "processing": processing,
            "serial": int(client.zcard(keys.key("serial"))),
        }

    def retry_failed_args(self, key: str, fields: dict[str, Any], priority: int) -> list[Any]:
        msg_id, _, group = key.partition("|")
        return [
            key,
            msg_id or key,
            priority,
            text_field(fields.get("identifier")),
            group,
            text_field(fields.get("serial_group")),
        ]
