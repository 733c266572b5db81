"""The frames of one event, without I/O (private): names, payloads, ``Received``.

``EventSocketBase`` (and so the sync and asyncio sockets) encode and decode through
these functions; nothing here touches a socket.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from zevents.errors import DecodeError, EncodeError
from zevents.serializers import Serializer

__all__ = ["NAMES", "Received", "decode_frames", "dumps_payload", "encode_name"]

#: Event name -> its encoded frame: names are few and fired often.
NAMES: dict[str, bytes] = {}
_NAMES_LIMIT = 4096


class Received(NamedTuple):
    """One event as received.

    Attributes:
        event: The event name.
        payload: The decoded payload.
        address: The sender's identity on a ROUTER socket, else ``None``.
        token: The confirmation token when the sender waits for one, else ``None``.
    """

    event: str
    payload: Any
    address: bytes | None = None
    token: bytes | None = None


def encode_name(event: str) -> bytes:
    """The name frame of ``event`` (kept in ``NAMES``, up to a limit).

    Raises:
        TypeError: ``event`` is not a str.
    """
    name = NAMES.get(event)
    if name is None:
        if not isinstance(event, str):
            raise TypeError(f"event name must be a str, not {type(event).__name__}")
        name = event.encode()
        if len(NAMES) < _NAMES_LIMIT:
            NAMES[event] = name
    return name


def dumps_payload(serializer: Serializer, payload: Any, event: str) -> bytes:
    """``serializer.dumps(payload)``, any failure of it raised as ``EncodeError``."""
    try:
        return serializer.dumps(payload)
    except EncodeError:
        raise
    except Exception as exc:
        raise EncodeError(
            f"payload of {event!r} cannot be encoded by {serializer!r}: {exc}", event=event
        ) from exc


def decode_frames(serializer: Serializer, frames: list[bytes]) -> tuple[str, Any]:
    """The ``(event, payload)`` of an event's frames (no address, no token): one payload
    frame decodes to its value, none to ``None``, several to the list of their values.

    Raises:
        DecodeError: No frames, a name that is not UTF-8, or a payload the serializer
            rejects; the error keeps the frames.
    """
    if not frames:
        raise DecodeError("empty message: no event-name frame", frames=frames)
    try:
        event = bytes(frames[0]).decode()
    except UnicodeDecodeError as exc:
        raise DecodeError(f"event name is not UTF-8: {exc}", frames=frames) from exc
    if not event:
        raise DecodeError("empty event name", frames=frames)
    count = len(frames)
    try:
        if count == 2:
            return event, serializer.loads(frames[1])
        if count == 1:
            return event, None
        return event, [serializer.loads(frame) for frame in frames[1:]]
    except Exception as exc:
        raise DecodeError(
            f"payload of {event!r} cannot be decoded: {exc}", frames=frames, event=event
        ) from exc
