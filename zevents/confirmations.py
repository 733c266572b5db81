"""Confirmed delivery without I/O: tokens, confirmation frames, deadlines, and the
bookkeeping of several events in flight.

A confirmed message ends with a token frame; the receiver answers with
``[zevents.confirmed, tokens, status]``, where ``tokens`` is one token, or several
(messages of one sender that went well, confirmed in one message). A sender with a
window of N puts each event on the wire at once and keeps it in a ``ConfirmWindow``
until its confirmation (matched by token, in any order) arrives, it fails remotely, or
its time is up. The sync and asyncio sockets and listeners share all of this; only they
read and write sockets.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from zevents._frames import Received
from zevents.errors import DecodeError, DeliveryError, DeliveryTimeout, RemoteError
from zevents.events import CONFIRMED, ZEROEVENTS_CONFIRMED

__all__ = [
    "CONFIRMED_FRAME",
    "CONFIRM_OK",
    "READ_EVERY",
    "READ_EVERY_MAX",
    "TOKEN_LENGTH",
    "TOKEN_MARKER",
    "ZEROEVENTS_CONFIRMED_FRAME",
    "Answer",
    "ConfirmWindow",
    "Deadline",
    "InFlight",
    "answer_frames",
    "answers_frames",
    "confirmation_frames",
    "confirmation_in",
    "is_zeroevents_confirmation",
    "new_token",
    "raise_for_status",
    "split_tokens",
    "status_error",
    "unconfirmed_error",
    "wait_ms",
    "zeroevents_confirmation_frames",
]

#: First bytes of a confirmation token frame.
TOKEN_MARKER = b"\xffzv1"
#: Length of a token frame: the marker, then 8 bytes.
TOKEN_LENGTH = len(TOKEN_MARKER) + 8
#: Frame 0 of a confirmation.
CONFIRMED_FRAME = CONFIRMED.encode()
#: Frame 0 of a zeroevents confirmation.
ZEROEVENTS_CONFIRMED_FRAME = ZEROEVENTS_CONFIRMED.encode()
#: The status frame of a confirmation whose receivers ran without error.
CONFIRM_OK = b'{"ok":true}'
_OK = CONFIRM_OK

# Tokens only need to be unique per sending socket; a per-process random prefix keeps
# them apart across sockets and restarts as well.
_TOKEN_IDS = itertools.count(int.from_bytes(os.urandom(4), "big") << 32)


def new_token() -> bytes:
    """A fresh token frame, unique in this process."""
    return TOKEN_MARKER + next(_TOKEN_IDS).to_bytes(8, "big")


def confirmation_frames(
    token: bytes, error: BaseException | str | None, address: bytes | None = None
) -> list[bytes]:
    """The confirmation of the message that carried ``token``: OK, or ``error``; routed
    to ``address`` (a ROUTER's peer) when given."""
    if error is None:
        status = _OK
    else:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        status = orjson.dumps({"ok": False, "error": text})
    if address is None:
        return [CONFIRMED_FRAME, token, status]
    return [address, CONFIRMED_FRAME, token, status]


def split_tokens(tokens: bytes) -> list[bytes]:
    """The tokens of a confirmation's token frame (one, or several end to end)."""
    if len(tokens) == TOKEN_LENGTH:
        return [tokens]
    return [tokens[i : i + TOKEN_LENGTH] for i in range(0, len(tokens), TOKEN_LENGTH)]


def zeroevents_confirmation_frames(event: str, address: bytes | None = None) -> list[bytes]:
    """zeroevents' confirmation of ``event``: its name, as one JSON argument; routed to
    ``address`` when given."""
    frames = [ZEROEVENTS_CONFIRMED_FRAME, orjson.dumps(event)]
    return frames if address is None else [address, *frames]


#: A message received, with the error its handling met (None: it went well).
Answer = tuple[Received | DecodeError, Exception | None]


def answer_frames(
    received: Received | DecodeError, error: BaseException | str | None, zeroevents: bool
) -> list[bytes] | None:
    """The frames (routed, on ROUTER) that confirm ``received``, or None when it needs
    no answer (no token, and not ``zeroevents``' form).

    Args:
        received: What a socket's ``receive`` returned, or the ``DecodeError`` it raised.
        error: The failure to report to the sender, if its handling failed.
        zeroevents: Answer a message without a token in zeroevents' form.
    """
    if received.token is not None:
        return confirmation_frames(received.token, error, received.address)
    if zeroevents and received.event not in (None, ZEROEVENTS_CONFIRMED):
        return zeroevents_confirmation_frames(received.event, received.address)
    return None


def answers_frames(answers: list[Answer], zeroevents: bool) -> list[tuple[list[bytes], str, int]]:
    """The messages that confirm ``answers`` (each message with the error its handling
    met, or None), each with the first event it confirms and how many: one per sender
    for the messages that went well, their tokens end to end in one frame, so a batch
    costs a send per sender, not per event; one each for the rest."""
    ok: dict[bytes | None, list[bytes]] = {}
    first: dict[bytes | None, str] = {}
    messages = []
    for received, error in answers:
        token = received.token
        if token is not None and error is None:
            address = received.address
            tokens = ok.get(address)
            if tokens is None:
                ok[address] = [token]
                first[address] = received.event or ""
            else:
                tokens.append(token)
        elif (frames := answer_frames(received, error, zeroevents)) is not None:
            messages.append((frames, received.event or "", 1))
    for address, tokens in ok.items():
        frames = confirmation_frames(b"".join(tokens), None, address)
        messages.append((frames, first[address], len(tokens)))
    return messages


def confirmation_in(frames: list[bytes]) -> tuple[bytes, bytes] | None:
    """The ``(tokens, status)`` of a confirmation's frames (``split_tokens`` parts the
    tokens); None for any other message."""
    if len(frames) >= 2 and frames[0] == CONFIRMED_FRAME:
        return frames[1], frames[2] if len(frames) > 2 else _OK
    return None


def is_zeroevents_confirmation(frames: list[bytes], event: str) -> bool:
    """Whether ``frames`` are a ``zeroevents.confirmed`` naming ``event`` (its one JSON
    argument; a list holding it is taken too)."""
    if len(frames) < 2 or frames[0] != ZEROEVENTS_CONFIRMED_FRAME:
        return False
    try:
        named = orjson.loads(frames[1])
    except orjson.JSONDecodeError:
        return False
    return bool(named == event or named == [event])


def raise_for_status(status: bytes, event: str) -> None:
    """Return if a confirmation's status frame is OK.

    Raises:
        RemoteError: The receiver reported that its receivers raised.
    """
    error = status_error(status)
    if error is not None:
        raise RemoteError(error, event=event)


def wait_ms(deadline: float | None, stop: float | None = None) -> int:
    """Milliseconds from now until ``deadline`` or ``stop`` (monotonic seconds), whichever
    is first, rounded up; 0 once past; -1 when neither is set (wait forever)."""
    if deadline is None or (stop is not None and stop < deadline):
        deadline = stop
    if deadline is None:
        return -1
    return max(0, math.ceil((deadline - time.monotonic()) * 1000))


class Deadline:
    """The end of a wait of ``timeout_ms`` milliseconds from now (-1: none).

    Args:
        timeout_ms: The wait, in milliseconds; negative waits forever.
    """

    __slots__ = ("at", "timeout_ms")

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self.at = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000

    def left_ms(self) -> int:
        """Milliseconds left (0 once past, -1 for no deadline)."""
        return wait_ms(self.at)

    def missed(self, event: str, zeroevents: bool = False) -> DeliveryTimeout:
        """The error of a confirmation of ``event`` that did not come by this deadline."""
        form = "zeroevents confirmation" if zeroevents else "confirmation"
        return DeliveryTimeout(
            f"no {form} of {event!r} within {self.timeout_ms} ms", event=event, sent=True
        )


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


#: Sends between two reads of the confirmations that came meanwhile, at least: a poll
#: per send costs more than the send, and the window bounds what waits unread. A window
#: reads every quarter of its size, up to ``READ_EVERY_MAX`` sends (a read that finds
#: nothing costs two system calls; one that finds a batch of confirmations, one).
READ_EVERY = 32
READ_EVERY_MAX = 256


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
        # token -> (event, payload, deadline): a tuple per event, an InFlight only for
        # the ones settled with an error (the common path makes no object).
        self._flight: OrderedDict[bytes, tuple[str, Any, float | None]] = OrderedDict()
        self._unread = 0
        self._read_every = max(READ_EVERY, min(size // 4, READ_EVERY_MAX))

    def __len__(self) -> int:
        return len(self._flight)

    @property
    def is_full(self) -> bool:
        """Whether a new event must wait for a confirmation first."""
        return len(self._flight) >= self.size

    def is_due(self) -> bool:
        """Whether to read the confirmations that came before the next send: every
        quarter of the window (``READ_EVERY`` to ``READ_EVERY_MAX`` sends), and whenever
        the window is full."""
        self._unread += 1
        if self._unread >= self._read_every or self.is_full:
            self._unread = 0
            return True
        return False

    def add(self, token: bytes, event: str, payload: Any, now: float) -> None:
        """An event went out with ``token``."""
        deadline = None if self.timeout is None else now + self.timeout
        self._flight[token] = (event, payload, deadline)

    def open(self, event: str, payload: Any) -> bytes:
        """A fresh token for an event about to be sent, kept in flight from now (the
        sender ``discard``s it if the send fails)."""
        token = new_token()
        self.add(token, event, payload, time.monotonic())
        return token

    def discard(self, token: bytes) -> None:
        """Forget an event whose send failed (it never went out)."""
        self._flight.pop(token, None)

    def settle(self, tokens: bytes, status: bytes) -> list[InFlight]:
        """A confirmation of ``tokens`` (one token or several end to end) arrived; the
        events it settles that failed remotely, each carrying a ``RemoteError`` (late
        ones, of events already timed out, settle nothing)."""
        if status == _OK:
            pop = self._flight.pop
            for token in split_tokens(tokens):
                pop(token, None)
            return []
        failed = []
        for token in split_tokens(tokens):
            flight = self.confirm(token, status)
            if flight is not None and flight.error is not None:
                failed.append(flight)
        return failed

    def confirm(self, token: bytes, status: bytes) -> InFlight | None:
        """A confirmation arrived; the event it settles, if it was still in flight (a
        late one of an event already timed out settles nothing). One that failed
        remotely carries a ``RemoteError``."""
        kept = self._flight.pop(token, None)
        if kept is None:
            return None
        flight = InFlight(token, *kept)
        error = status_error(status)
        if error is not None:
            flight.error = RemoteError(error, event=flight.event, endpoint=self.endpoint)
        return flight

    def expire(self, now: float) -> list[InFlight]:
        """The events whose time is up, removed from the window, each carrying a
        ``DeliveryTimeout``, oldest first."""
        expired = []
        while self._flight:
            token, kept = next(iter(self._flight.items()))
            if kept[2] is None or kept[2] > now:
                break
            del self._flight[token]
            oldest = InFlight(token, *kept)
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
        return next(iter(self._flight.values()))[2]

    def abandon(self, why: str) -> list[InFlight]:
        """Give up on every event in flight, each carrying a ``DeliveryTimeout`` that
        says ``why``; their confirmations, if any come, settle nothing."""
        gone = [InFlight(token, *kept) for token, kept in self._flight.items()]
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
