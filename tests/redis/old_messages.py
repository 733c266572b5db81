"""Messages made old on purpose, for the history tests (purge, archive, replay).

A message's age is its body's ``enqueued_at`` (list, sorted-set, set) or its entry id's
time (stream); these helpers set either to a fixed past moment instead of waiting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from zevents.redis import ArchivedMessage, JsonLinesArchive, RedisQueue

#: 2026-01-01T10:00:00Z in Unix milliseconds: long ago, as far as the tests care.
LONG_AGO_MS = 1_767_261_600_000
HOUR_MS = 3_600_000


def make_old(raw: redis.Redis, queue: RedisQueue, message_id: str, at_ms: int) -> None:
    """Rewrite a stored body's ``enqueued_at`` (list, sorted-set, set; and bodies in the
    msgs hash on streams): the message now looks sent at ``at_ms``."""
    key = queue.keys.key("msgs")
    body = json.loads(raw.hget(key, message_id) or b"null")
    body["enqueued_at"] = at_ms
    raw.hset(key, message_id, json.dumps(body))


def send_old(
    raw: redis.Redis, queue: RedisQueue, event: str, payload: Any, at_ms: int, **options: Any
) -> str:
    """Send a message that looks sent at ``at_ms``: on streams an entry whose id has
    that time (written as another program would, before any newer entry), elsewhere
    a zevents send whose body is then dated back. Returns the message id."""
    if queue.driver_name != "stream":
        message_id = queue.send(event, payload, **options)
        make_old(raw, queue, message_id, at_ms)
        return message_id
    key = queue.keys.ready(options.get("priority", queue.default_priority))
    last = raw.xinfo_stream(key)["last-generated-id"] if raw.exists(key) else b"0-0"
    seq = int(last.split(b"-")[1]) + 1 if last.startswith(str(at_ms).encode() + b"-") else 1
    message_id = f"{at_ms}-{seq}"
    body: dict[str, Any] = {"event": event, "payload": payload, "enqueued_at": at_ms}
    body["priority"] = options.get("priority", queue.default_priority)
    if "identifier" in options:
        body["identifier"] = options["identifier"]
    raw.xadd(key, {"i": message_id, "m": json.dumps(body)}, id=message_id)
    return message_id


def entries(raw: redis.Redis, key: str) -> list[tuple[str, dict[bytes, bytes]]]:
    """The entries of a stream: (entry id, fields)."""
    reply: Any = raw.xrange(key)
    return [(entry_id.decode(), fields) for entry_id, fields in reply]


def read_as(raw: redis.Redis, key: str, group: str, count: int) -> list[str]:
    """Read ``count`` new entries as consumer ``php`` of ``group``, as another program
    would (nothing acknowledged); their entry ids."""
    reply: Any = raw.xreadgroup(group, "php", {key: ">"}, count=count)
    return [entry_id.decode() for entry_id, _ in reply[0][1]]


def stored_ids(raw: redis.Redis, queue: RedisQueue) -> set[str]:
    """The members of the queue's msgs hash."""
    keys: Any = raw.hkeys(queue.keys.key("msgs"))
    return {member.decode() for member in keys}


class TakingStore(JsonLinesArchive):
    """A store during whose append a (sync) worker takes every message: the race
    archive must survive. The asyncio queue appends in a thread, so its tests use it
    too."""

    def __init__(self, path: Path, queue: RedisQueue) -> None:
        super().__init__(path)
        self.consumer = queue.consumer(lease=30.0)

    def append(self, records: Sequence[ArchivedMessage]) -> None:
        super().append(records)
        self.consumer.take(10)
