"""Turning ``send`` arguments into checked, encoded messages (sans-I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from zevents.errors import ConfigError
from zevents.redis.message import BodyCodec, content_id
from zevents.redis.protocol.base import SendItem
from zevents.redis.protocol.records import QueueShape

__all__ = ["SEND_OPTIONS", "send_item", "send_items"]

#: The keywords of ``send`` a ``send_many`` mapping may hold besides event and payload.
SEND_OPTIONS = frozenset(
    {"delay", "execute_at", "priority", "identifier", "serial_group", "unique"}
)


def _due_ms(execute_at: datetime | None) -> int | None:
    if execute_at is None:
        return None
    if execute_at.tzinfo is None:
        execute_at = execute_at.replace(tzinfo=timezone.utc)
    return int(execute_at.timestamp() * 1000)


def send_item(
    shape: QueueShape, codec: BodyCodec, event: str, payload: Any, options: Mapping[str, Any]
) -> SendItem:
    """One message, checked and encoded; ``options`` are keywords of ``RedisQueue.send``
    (``delay``, ``execute_at``, ``priority``, ``identifier``, ``serial_group``,
    ``unique``).

    Raises:
        ConfigError: An unknown keyword, or an option the queue cannot take (``option``
            names it).
        EncodeError: The payload cannot be serialized.
    """
    unknown = set(options) - SEND_OPTIONS
    if unknown:
        raise ConfigError(f"unknown send options {sorted(unknown)}", option="send_many")
    if not isinstance(event, str) or not event:
        raise ConfigError("event must be a non-empty string", option="event")
    priority, identifier = options.get("priority"), options.get("identifier")
    serial_group, unique = options.get("serial_group"), bool(options.get("unique"))
    prio = shape.default_priority if priority is None else priority
    if prio not in shape.priorities:
        raise ConfigError(
            f"priority {prio} is not one of the queue's levels {shape.priorities}",
            option="priority",
        )
    if unique and identifier is None:
        raise ConfigError("unique=True needs an identifier", option="unique")
    if serial_group is not None and (not serial_group or "\0" in serial_group):
        raise ConfigError(
            "serial_group must be a non-empty string without NUL", option="serial_group"
        )
    delay, at_ms = options.get("delay", 0), _due_ms(options.get("execute_at"))
    if shape.driver == "set" and (delay or at_ms is not None):
        raise ConfigError(
            "the set driver has no delays; use list, sorted-set or stream", option="delay"
        )
    if delay < 0:
        raise ConfigError("delay must not be negative", option="delay")
    body = codec.encode(event, payload, prio, identifier, serial_group)
    msg_id = content_id(event, payload, identifier) if shape.driver == "set" else ""
    return SendItem(body, prio, msg_id, int(delay * 1000), at_ms, identifier, unique, serial_group)


def send_items(
    shape: QueueShape, codec: BodyCodec, events: Iterable[tuple[str, Any] | Mapping[str, Any]]
) -> list[SendItem]:
    """The messages of ``send_many``: ``(event, payload)`` pairs, or mappings with
    ``event``, ``payload`` and any keyword of ``send``.

    Raises:
        ConfigError: An unknown keyword, or an option the queue cannot take.
    """
    items = []
    prio, content = shape.default_priority, shape.driver == "set"
    encode = codec.encode
    for entry in events:
        # (a tuple, the common form, skips the Mapping ABC check)
        if type(entry) is not tuple and isinstance(entry, Mapping):
            options = dict(entry)
            event, payload = options.pop("event"), options.pop("payload", None)
            items.append(send_item(shape, codec, event, payload, options))
            continue
        # (event, payload): no option to check, the queue's default priority.
        event, payload = entry[0], entry[1]
        if not isinstance(event, str) or not event:
            raise ConfigError("event must be a non-empty string", option="event")
        body = encode(event, payload, prio, None, None)
        items.append(SendItem(body, prio, content_id(event, payload, None) if content else ""))
    return items
