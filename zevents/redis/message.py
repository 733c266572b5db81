"""Messages: the stored body and its codec, a message being worked, a failed one.

Importable without redis-py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from zevents.errors import DecodeError, EncodeError
from zevents.eventbus import matcher
from zevents.serializers import JSON_OPTIONS, JsonSerializer, Serializer, codec_of

__all__ = [
    "BodyCodec",
    "FailedMessage",
    "Lease",
    "Message",
    "Reclaimed",
    "Taken",
    "content_id",
    "failed_entry",
    "failure_record",
    "select_failed",
]


class BodyCodec:
    """Encodes and decodes the stored body of a message with a ``Serializer``.

    The body is a JSON object (``event``, ``payload``, ``priority``, optional
    ``identifier`` and ``serial_group``; the send script adds ``enqueued_at``): the Lua
    scripts read and extend it, so a custom serializer must write a JSON object too
    (one with its own handling of dates, decimals or other types, say).

    Args:
        serializer: The serializer; ``None`` is ``JsonSerializer``.
    """

    __slots__ = ("_decode", "_encode", "serializer")

    def __init__(self, serializer: Serializer | None = None) -> None:
        self.serializer: Serializer = serializer if serializer is not None else JsonSerializer()
        self._encode, self._decode = codec_of(self.serializer)

    def encode(
        self,
        event: str,
        payload: Any,
        priority: int,
        identifier: str | None = None,
        serial_group: str | None = None,
    ) -> bytes:
        """The stored body of one message.

        Raises:
            EncodeError: ``payload`` cannot be written by the serializer.
        """
        body: dict[str, Any] = {"event": event, "payload": payload, "priority": priority}
        if identifier is not None:
            body["identifier"] = identifier
        if serial_group is not None:
            body["serial_group"] = serial_group
        try:
            return self._encode(body)
        except Exception:
            pass  # the bound encoder may refuse what dumps handles; dumps decides
        try:
            return self.serializer.dumps(body)
        except EncodeError as exc:
            exc.event = event
            raise
        except Exception as exc:
            raise EncodeError(f"payload is not serializable: {exc}", event=event) from exc

    def decode(self, body: bytes) -> dict[str, Any]:
        """The fields of a stored body.

        Raises:
            DecodeError: ``body`` is not an object with a string ``event``.
        """
        try:
            fields = self._decode(body)
        except Exception:
            try:
                fields = self.serializer.loads(body)
            except Exception as exc:
                raise DecodeError(f"message body is not valid JSON: {exc}", frames=[body]) from exc
        if not isinstance(fields, dict) or not isinstance(fields.get("event"), str):
            raise DecodeError(
                "message body is not a JSON object with an 'event' string", frames=[body]
            )
        return fields


def content_id(event: str, payload: Any, identifier: str | None) -> str:
    """The id of a message on the ``set`` driver: the same content, the same id."""
    data = orjson.dumps([event, payload, identifier], option=JSON_OPTIONS | orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(slots=True)
class Taken:
    """A message a consumer holds under a lease, as the take script returned it.

    Attributes:
        id: The message id.
        body: The stored body.
        attempt: 1 on the first delivery.
        priority: The priority it was taken from.
        token: The lease token (list, sorted-set, set) or the stream entry id (stream).
    """

    id: str
    body: bytes
    attempt: int
    priority: int
    token: str


class Reclaimed(list[Taken]):
    """What a reclaim leased to its consumer (stream driver; the others put what they
    recover back in line and return none), and whether it stopped at its limit.

    Attributes:
        more: The reclaim recovered as many as one call may (500 expired leases on the
            list, sorted-set and set drivers, 100 entries per priority on streams), or
            (streams) stopped part way through a pending list: more may be waiting, so
            a worker reclaims again in its next round rather than ``keep_alive / 2``
            later.
        resume: Streams: where the next reclaim goes on scanning each priority's
            pending list (``""``: that priority's scan is done while others' are not;
            empty: the pass is over, the next one starts at every list's start).
    """

    more: bool
    resume: dict[int, str]

    def __init__(self, taken: Iterable[Taken] = ()) -> None:
        super().__init__(taken)
        self.more = False
        self.resume = {}


class Lease(Protocol):
    """What a ``Message`` may do to the lease it is worked under."""

    def renew(self, message: Message) -> None:
        """Extend the lease from now; raise ``QueueError`` if it was lost."""
        ...

    def record_status(self, message: Message) -> None:
        """Store the message's ``status`` and ``percent``."""
        ...


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
        queue: The name of the queue it came from.
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
    queue: str
    taken: Taken = field(repr=False)
    lease: Lease = field(repr=False)
    status: str | None = None
    percent: float | None = None

    @classmethod
    def from_fields(
        cls, taken: Taken, fields: Mapping[str, Any], queue: str, lease: Lease
    ) -> Message:
        """The message of a taken body, from its decoded fields."""
        enqueued = fields.get("enqueued_at")
        identifier = fields.get("identifier")
        serial_group = fields.get("serial_group")
        return cls(
            taken.id,
            fields["event"],
            fields.get("payload"),
            taken.attempt,
            taken.priority,
            enqueued / 1000.0 if isinstance(enqueued, (int, float)) else None,
            identifier if isinstance(identifier, str) else None,
            serial_group if isinstance(serial_group, str) else None,
            queue,
            taken,
            lease,
        )

    def touch(self) -> None:
        """Extend the processing lease by the worker's ``keep_alive`` from now.

        Raises:
            QueueError: The lease was lost (another worker took the message over).
        """
        self.lease.renew(self)

    def set_status(self, status: str | None = None, percent: float | None = None) -> None:
        """Record progress, visible in ``queue.stats()``, heartbeats and the failed store."""
        if status is not None:
            self.status = status
        if percent is not None:
            self.percent = float(percent)
        self.lease.record_status(self)


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


def failure_record(
    error: str, receiver: str | None, attempts: int, reason: str, message: Message | None = None
) -> bytes:
    """The JSON object stored in the failed store (the script adds ``failed_at``)."""
    record: dict[str, Any] = {
        "error": error,
        "receiver": receiver,
        "attempts": attempts,
        "reason": reason,
    }
    if message is not None and (message.status is not None or message.percent is not None):
        record["status"] = message.status
        record["percent"] = message.percent
    return orjson.dumps(record)


def _number(value: Any) -> float:
    """A record's number field, 0 for anything that is not a number."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def failed_entry(key: str, record: bytes, body: bytes | None, codec: BodyCodec) -> FailedMessage:
    """A failed-store entry from its stored record and message body (a record that is
    not one zevents wrote, by hand or by another program, still reads: its text)."""
    try:
        info = orjson.loads(record)
    except orjson.JSONDecodeError:
        info = None
    if not isinstance(info, dict):
        info = {"error": f"unreadable failed record: {record!r}"}
    event = payload = None
    if body:
        try:
            fields = codec.decode(body)
            event, payload = fields["event"], fields.get("payload")
        except DecodeError:
            pass
    percent = info.get("percent")
    return FailedMessage(
        id=key,
        event=event,
        payload=payload,
        error=str(info.get("error", "")),
        receiver=_text_or_none(info.get("receiver")),
        attempts=int(_number(info.get("attempts"))),
        failed_at=_number(info.get("failed_at")) / 1000.0,
        reason=str(info.get("reason", "error")),
        body=body,
        group=_text_or_none(info.get("group")),
        status=_text_or_none(info.get("status")),
        percent=_number(percent) if percent is not None else None,
    )


def select_failed(
    entries: Iterable[FailedMessage],
    *,
    ids: Iterable[str] | None = None,
    event: str | None = None,
    receiver: str | None = None,
) -> list[FailedMessage]:
    """The entries that every given selector picks: ``ids`` (failed-store ids),
    ``event`` (a name or ``*`` pattern), ``receiver`` (a name or pattern)."""
    wanted = set(ids) if ids is not None else None
    by_event = matcher(event) if event else None
    by_receiver = matcher(receiver) if receiver else None
    return [
        entry
        for entry in entries
        if (wanted is None or entry.id in wanted)
        and (by_event is None or (entry.event is not None and by_event(entry.event)))
        and (by_receiver is None or (entry.receiver is not None and by_receiver(entry.receiver)))
    ]
