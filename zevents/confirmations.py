"""The bookkeeping of confirmed delivery with several events in flight (sans-I/O).

A confirmed sender with a window of N puts each event on the wire at once and keeps it
here until its confirmation (matched by token, in any order) arrives, it fails
remotely, or its time is up. The sync and asyncio listeners share this class; only
they read sockets.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from zevents.errors import DeliveryError, DeliveryTimeout, RemoteError

__all__ = ["ConfirmWindow", "InFlight", "status_error", "unconfirmed_error"]

_OK = b'{"ok":true}'


def status_error(status: bytes) -> str | None:
    """The remote error a confirmation's status frame reports, or None when it is OK."""
    if status == _OK:
        return None
    try:
        parsed: Any = orjson.loads(status)
    except orjson.JSONDecodeError:
        return "remote error (unreadable status)"
    if isinstance(parsed, dict):
        if parsed.get("ok") is True:
            return None
        return str(parsed.get("error", "remote error"))
    return "remote error (unreadable status)"


@dataclass(slots=True)
class InFlight:
    """An event sent and not confirmed yet."""

    token: bytes
    event: str
    payload: Any
    deadline: float | None
    error: DeliveryError | None = field(default=None)


class ConfirmWindow:
    """Events in flight, by token, oldest first.

    ``confirm`` and ``expire`` return the events they settle; one that failed (a
    remote error, or its time is up) carries its ``error``. Each event is returned by
    exactly one of them, once.

    Args:
        size: How many may be in flight at once (at least 1).
        timeout: Seconds each may wait for its confirmation; ``None`` waits forever.
        endpoint: The endpoint(s), for errors.
    """

    def __init__(self, size: int, timeout: float | None, endpoint: str) -> None:
        self.size = size
        self.timeout = timeout
        self.endpoint = endpoint
        self._flight: OrderedDict[bytes, InFlight] = OrderedDict()

    def __len__(self) -> int:
        return len(self._flight)

    @property
    def is_full(self) -> bool:
        """Whether a new event must wait for a confirmation first."""
        return len(self._flight) >= self.size

    def add(self, token: bytes, event: str, payload: Any, now: float) -> None:
        """An event went out with ``token``."""
        deadline = None if self.timeout is None else now + self.timeout
        self._flight[token] = InFlight(token, event, payload, deadline)

    def confirm(self, token: bytes, status: bytes) -> InFlight | None:
        """A confirmation arrived; the event it settles, if it was still in flight (a
        late one of an event already timed out settles nothing). One that failed
        remotely carries a ``RemoteError``."""
        flight = self._flight.pop(token, None)
        if flight is None:
            return None
        error = status_error(status)
        if error is not None:
            flight.error = RemoteError(error, event=flight.event, endpoint=self.endpoint)
        return flight

    def expire(self, now: float) -> list[InFlight]:
        """The events whose time is up, removed from the window, each carrying a
        ``DeliveryTimeout``, oldest first."""
        expired = []
        while self._flight:
            oldest = next(iter(self._flight.values()))
            if oldest.deadline is None or oldest.deadline > now:
                break
            del self._flight[oldest.token]
            oldest.error = DeliveryTimeout(
                f"no confirmation of {oldest.event!r} within {self.timeout:g} s",
                event=oldest.event,
                endpoint=self.endpoint,
                sent=True,
            )
            expired.append(oldest)
        return expired

    def next_deadline(self) -> float | None:
        """When the oldest event in flight times out (None: never, or none in flight)."""
        if not self._flight:
            return None
        return next(iter(self._flight.values())).deadline

    def abandon(self, why: str) -> list[InFlight]:
        """Give up on every event in flight, each carrying a ``DeliveryTimeout`` that
        says ``why``; their confirmations, if any come, settle nothing."""
        gone = list(self._flight.values())
        self._flight.clear()
        for flight in gone:
            flight.error = DeliveryTimeout(
                f"{flight.event!r} not confirmed: {why}",
                event=flight.event,
                endpoint=self.endpoint,
                sent=True,
            )
        return gone


def unconfirmed_error(failures: list[InFlight], endpoint: str) -> DeliveryError:
    """The error ``flush`` raises: how many were not confirmed, and which (the first
    ten in the message, all in ``error.unconfirmed`` as ``(event, token)`` pairs)."""

    def why(flight: InFlight) -> str:
        return type(flight.error).__name__ if flight.error is not None else "unknown"

    listed = ", ".join(f"{f.event!r} (token {f.token.hex()}, {why(f)})" for f in failures[:10])
    more = f" and {len(failures) - 10} more" if len(failures) > 10 else ""
    return DeliveryError(
        f"{len(failures)} event(s) not confirmed: {listed}{more}",
        event=failures[0].event,
        endpoint=endpoint,
        unconfirmed=[(f.event, f.token) for f in failures],
    )
