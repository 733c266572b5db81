"""The events of ``emit -``: JSON lines from stdin, each an event or a bad line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from zevents.events import CONFIRMED, PUSH_ERROR

__all__ = ["BadLine", "Line", "check_event", "read_lines"]

# Names zevents uses itself (a failed send, a wire acknowledgement): sent as events,
# they would be taken for zevents' own.
_RESERVED = frozenset({PUSH_ERROR, CONFIRMED})


@dataclass(frozen=True)
class Line:
    """One event to send; ``number`` is its stdin line number (``None`` for arguments)."""

    number: int | None
    event: str
    payload: Any


@dataclass(frozen=True)
class BadLine:
    """A stdin line that could not be turned into an event, and why."""

    number: int
    reason: str


def check_event(event: object) -> str | None:
    """Why ``event`` cannot be sent, or ``None`` when it can."""
    if not isinstance(event, str) or not event:
        return "the event name must be a non-empty string"
    if event in _RESERVED:
        return f"the event name {event!r} is reserved by zevents"
    return None


def _parse_line(number: int, raw: bytes, default_event: str | None) -> Line | BadLine:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BadLine(number, f"not JSON ({exc})")
    if isinstance(value, dict) and "event" in value and set(value) <= {"event", "payload"}:
        problem = check_event(value["event"])
        if problem is not None:
            return BadLine(number, problem)
        return Line(number, value["event"], value.get("payload"))
    if default_event is None:
        return BadLine(
            number, 'not {"event": ..., "payload": ...}, and no EVENT was given for payloads'
        )
    return Line(number, default_event, value)


def read_lines(stream: Iterable[bytes], default_event: str | None) -> Iterator[Line | BadLine]:
    """Events from JSON lines, lazily; blank lines are skipped.

    Each line is either ``{"event": NAME, "payload": ...}`` (exactly those keys, the
    payload optional) or a bare payload for ``default_event``.
    """
    for number, raw in enumerate(stream, start=1):
        if raw.strip():
            yield _parse_line(number, raw, default_event)
