"""Messages: the JSON format in Redis, a message being worked, and a failed one."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from zevents.errors import DecodeError, EncodeError

if TYPE_CHECKING:
    from zevents.redis.queue import RedisQueue

__all__ = [
    "FailedMessage",
    "Message",
    "Taken",
    "content_id",
    "decode_body",
    "encode_body",
    "failed_entry",
]

_OPTIONS = orjson.OPT_NON_STR_KEYS


def encode_body(
    event: str,
    payload: Any,
    priority: int,
    identifier: str | None = None,
    serial_group: str | None = None,
) -> bytes:
    """The JSON object stored for one message (``enqueued_at`` is added by Redis).

    Raises:
        EncodeError: ``payload`` cannot be written as JSON.
    """
    body: dict[str, Any] = {"event": event, "payload": payload, "priority": priority}
    if identifier is not None:
        body["identifier"] = identifier
    if serial_group is not None:
        body["serial_group"] = serial_group
    try:
        return orjson.dumps(body, option=_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise EncodeError(f"payload is not JSON-serializable: {exc}", event=event) from exc


def decode_body(body: bytes) -> dict[str, Any]:
    """The fields of a stored message.

    Raises:
        DecodeError: ``body`` is not a JSON object with a string ``event``.
    """
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"message body is not valid JSON: {exc}", frames=[body]) from exc
    if not isinstance(fields, dict) or not isinstance(fields.get("event"), str):
        raise DecodeError("message body is not a JSON object with an 'event' string", frames=[body])
    return fields


def content_id(event: str, payload: Any, identifier: str | None) -> str:
    """The id of a message on the ``set`` driver: the same content, the same id."""
    data = orjson.dumps([event, payload, identifier], option=_OPTIONS | orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(slots=True)
class Taken:
    """A message a worker holds under a lease (driver level).

    Attributes:
        id: The message id.
        body: The stored JSON bytes.
        attempt: 1 on the first delivery.
        priority: The priority it was taken from.
        token: The lease token (list, sorted-set, set) or the stream entry id (stream).
    """

    id: str
    body: bytes
    attempt: int
    priority: int
    token: str


@dataclass(slots=True)
class Message:
    """The message a worker is processing, as ``zevents.redis.current()`` returns it.

    Attributes:
        id: The message id.
        event: The event name.
        payload: The decoded payload.
        attempt: 1 on the first delivery, 2 on the first retry, ...
        priority: Its priority level.
        enqueued_at: When it was sent, in Unix seconds of the Redis clock (or None).
        identifier: The identifier it was sent with, if any.
        serial_group: Its serial group, if any.
        queue: The queue it came from.
        status: The last status set with ``set_status``.
        percent: The last percentage set with ``set_status``.
    """

    id: str
    event: str
    payload: Any
    attempt: int
    priority: int
    enqueued_at: float | None
    identifier: str | None
    serial_group: str | None
    queue: RedisQueue
    taken: Taken = field(repr=False)
    lease_ms: int = field(default=30_000, repr=False)
    status: str | None = None
    percent: float | None = None

    def touch(self) -> None:
        """Extend the processing lease by the worker's ``keep_alive`` from now.

        Raises:
            QueueError: The lease was lost (another worker took the message over).
        """
        self.queue._touch_current(self)

    def set_status(self, status: str | None = None, percent: float | None = None) -> None:
        """Record progress, visible in ``queue.stats()``, heartbeats and the failed store."""
        if status is not None:
            self.status = status
        if percent is not None:
            self.percent = float(percent)
        self.queue._set_status(self)


@dataclass(frozen=True, slots=True)
class FailedMessage:
    """One entry of a queue's failed store.

    Attributes:
        id: The key to pass to ``retry_failed(ids=...)``.
        event: The event name (None when the body could not be decoded).
        payload: The payload (None when the body could not be decoded).
        error: The exception type and message, e.g. ``"ValueError: bad total"``.
        receiver: The receiver that raised, if known.
        attempts: Attempts made.
        failed_at: Unix seconds (Redis clock).
        reason: ``error``, ``permanent``, ``attempts``, ``undecodable``, ``lease-expired``
            or ``reclaim-limit``.
        body: The raw stored body.
        group: The stream consumer group it failed in (stream driver).
        status: The last status the receiver set.
        percent: The last percentage the receiver set.
    """

    id: str
    event: str | None
    payload: Any
    error: str
    receiver: str | None
    attempts: int
    failed_at: float
    reason: str
    body: bytes | None
    group: str | None = None
    status: str | None = None
    percent: float | None = None


def failed_entry(key: str, record: bytes, body: bytes | None) -> FailedMessage:
    """A failed-store entry from its stored record and message body."""
    try:
        info = orjson.loads(record)
    except orjson.JSONDecodeError:
        info = {"error": f"unreadable failed record: {record!r}"}
    event = payload = None
    if body:
        try:
            fields = decode_body(body)
            event, payload = fields["event"], fields.get("payload")
        except ValueError:
            pass
    percent = info.get("percent")
    return FailedMessage(
        id=key,
        event=event,
        payload=payload,
        error=str(info.get("error", "")),
        receiver=info.get("receiver"),
        attempts=int(info.get("attempts") or 0),
        failed_at=float(info.get("failed_at") or 0) / 1000.0,
        reason=str(info.get("reason", "error")),
        body=body,
        group=info.get("group"),
        status=info.get("status"),
        percent=float(percent) if percent is not None else None,
    )
