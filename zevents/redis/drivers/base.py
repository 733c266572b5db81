"""The driver protocol and the script runner drivers share."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from zevents.redis.keys import QueueKeys
from zevents.redis.message import Taken, decode_body
from zevents.redis.scripts import script_source

__all__ = ["Driver", "ScriptRunner", "SendItem"]

_PLAIN_SOURCE = script_source("send_plain.lua")
_PLAIN_SHA = hashlib.sha1(_PLAIN_SOURCE.encode()).hexdigest()


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


class ScriptRunner:
    """Runs the queue's Lua scripts by SHA with the queue's KEYS and leading ARGV."""

    def __init__(self, client: redis.Redis, keys: QueueKeys, kind: str) -> None:
        self.client = client
        self.keys = keys
        self._keys = keys.script_keys()
        self._head: list[Any] = [kind, len(keys.priorities), *keys.priorities]
        self._scripts: dict[str, Any] = {}
        self._kind = kind
        self._plain_sha = _PLAIN_SHA
        self._plain_keys = {
            p: [keys.key("msgs"), keys.key("seq"), keys.ready(p)] for p in keys.priorities
        }
        self._many_keys = [keys.key("msgs"), keys.key("seq")] + [
            keys.ready(p) for p in keys.priorities
        ]
        self._many_index = {p: str(i + 1) for i, p in enumerate(keys.priorities)}

    def __call__(self, name: str, args: Sequence[Any] = (), client: Any = None) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.client.register_script(script_source(name))
        return script(keys=self._keys, args=[*self._head, *args], client=client or self.client)

    def send_plain(self, item: SendItem) -> Any:
        """Enqueue one plain message (``item.is_plain``) with ``send_plain.lua``.

        That script takes only the three keys it writes (``send.lua`` takes them all and
        eight arguments per message), and it is called with ``EVALSHA`` directly: this is
        the hot path of ``RedisQueue.send``.
        """
        keys = self._plain_keys[item.priority]
        try:
            return self.client.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", self._plain_sha, 3, *keys, self._kind, item.id, item.body
            )
        except redis.exceptions.NoScriptError:
            self._plain_sha = self.client.script_load(_PLAIN_SOURCE)
            return self.client.execute_command(  # type: ignore[no-untyped-call]
                "EVALSHA", self._plain_sha, 3, *keys, self._kind, item.id, item.body
            )

    def send_plain_many(self, items: Sequence[SendItem], client: Any = None) -> Any:
        """Enqueue plain messages (``item.is_plain``) in one script call.

        ``send_plain_many.lua`` takes one ``INCRBY``, one ``HSET`` and one push per
        priority level for the whole batch; ``send.lua`` makes three calls per message.
        """
        script = self._scripts.get("send_plain_many.lua")
        if script is None:
            script = self._scripts["send_plain_many.lua"] = self.client.register_script(
                script_source("send_plain_many.lua")
            )
        index = self._many_index
        args: list[Any] = [self._kind]
        for item in items:
            args.append(index[item.priority])
            args.append(item.id)
            args.append(item.body)
        return script(keys=self._many_keys, args=args, client=client or self.client)


class Driver(Protocol):
    """How a queue stores, hands out and settles messages (one per Redis structure)."""

    name: str
    runner: ScriptRunner

    def send(self, items: Sequence[SendItem]) -> list[str]:
        """Enqueue ``items`` in one round trip; returns their ids."""
        ...

    def take(self, count: int, lease_ms: int, priorities: Sequence[int]) -> list[Taken]:
        """Lease up to ``count`` due messages, highest priority first."""
        ...

    def reclaim(
        self, lease_ms: int, max_attempts: int, max_reclaims: int, priorities: Sequence[int]
    ) -> list[Taken]:
        """Recover messages of dead workers; returns any now leased to the caller."""
        ...

    def ack(self, taken: Sequence[Taken], pipe: Any = None) -> list[str]:
        """Finish messages; returns the ids whose lease was lost (not acknowledged)."""
        ...

    def retry(self, taken: Taken, delay_ms: int, *, count_attempt: bool) -> bool:
        """Put a message back, due after ``delay_ms``; False if its lease was lost."""
        ...

    def fail(self, taken: Taken, record: bytes, identifier: str | None, serial: str | None) -> bool:
        """Move a message to the failed store; False if its lease was lost."""
        ...

    def touch(self, taken: Sequence[Taken], lease_ms: int) -> list[str]:
        """Renew leases; returns the ids whose lease was lost."""
        ...

    def release(self, taken: Sequence[Taken], lease_ms: int) -> None:
        """Give back messages that were taken but never started."""
        ...

    def leave(self) -> None:
        """The worker using this queue stopped: drop per-consumer state it no longer needs."""
        ...

    def counts(self) -> dict[str, Any]:
        """``ready`` per priority, ``delayed`` and ``processing``."""
        ...

    def retry_failed_args(self, key: str, fields: dict[str, Any], priority: int) -> list[Any]:
        """The ``retry_failed.lua`` arguments of one failed entry."""
        ...


def text_field(value: Any) -> str:
    """A body field as script argument text ('' when absent or not a string)."""
    return value if isinstance(value, str) else ""


def ident_and_serial(t: Taken) -> tuple[str, str]:
    """The identifier and serial group of a taken message, for the settling scripts."""
    # The body is decoded only when it names one of them.
    if b'"identifier"' not in t.body and b'"serial_group"' not in t.body:
        return ("", "")
    try:
        fields = decode_body(t.body)
    except ValueError:
        return ("", "")
    return (text_field(fields.get("identifier")), text_field(fields.get("serial_group")))
