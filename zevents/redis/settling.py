"""What to do with a message once its receivers ran, and what the hooks say (sans-I/O).

The sync worker and an asyncio one settle messages alike: this decides, they act.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from zevents.redis._outcome import Outcome, OutcomeKind
from zevents.redis.message import Message, Taken, failure_record
from zevents.redis.retry import RetryPolicy

__all__ = ["Settle", "Settlement", "before_info", "settlement", "undecodable"]


class Settle(enum.Enum):
    """How a message is settled."""

    #: Finished: acknowledge it (in the next batch).
    ACK = "ack"
    #: Put it back, due after ``delay``, counting the attempt.
    RETRY = "retry"
    #: Put it back, due after ``delay``, without counting the attempt (WaitingError).
    WAIT = "wait"
    #: Move it to the failed store with ``record``.
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Settlement:
    """The decision for one message.

    Attributes:
        kind: What to do.
        delay: Seconds until it is due again (``RETRY``, ``WAIT``).
        record: The failure record (``FAIL``).
    """

    kind: Settle
    delay: float | None = None
    record: bytes | None = None

    def failed_info(self, outcome: Outcome, duration: float) -> dict[str, Any] | None:
        """What ``zevents.worker.failed`` adds to the message's info, or None when it
        does not fire (the message finished, or waits)."""
        if self.kind in (Settle.ACK, Settle.WAIT):
            return None
        retry_in = self.delay if self.kind is Settle.RETRY else None
        return {
            "error": outcome.error,
            "receiver": outcome.receiver,
            "duration": duration,
            "retry_in": retry_in,
            "final": retry_in is None,
        }


_ACK = Settlement(Settle.ACK)


def settlement(outcome: Outcome, message: Message, retry: RetryPolicy) -> Settlement:
    """What to do with ``message`` after its receivers ended with ``outcome``."""
    kind = outcome.kind
    if kind is OutcomeKind.OK:
        return _ACK
    if kind is OutcomeKind.WAITING:
        delay = outcome.delay if outcome.delay is not None else retry.delay(message.attempt)
        return Settlement(Settle.WAIT, delay)
    if kind is OutcomeKind.PERMANENT or retry.is_exhausted(message.attempt):
        reason = "permanent" if kind is OutcomeKind.PERMANENT else "attempts"
        record = failure_record(
            outcome.error or "", outcome.receiver, message.attempt, reason, message
        )
        return Settlement(Settle.FAIL, record=record)
    return Settlement(Settle.RETRY, retry.delay(message.attempt))


def before_info(message: Message) -> dict[str, Any]:
    """The payload of ``zevents.worker.before`` (the others extend it)."""
    return {
        "queue": message.queue,
        "id": message.id,
        "event": message.event,
        "attempt": message.attempt,
        "priority": message.priority,
    }


def undecodable(queue: str, taken: Taken, error: str) -> tuple[bytes, dict[str, Any]]:
    """The failure record of a body that is not a message, and its failed-hook payload."""
    record = failure_record(error, None, taken.attempt, "undecodable")
    info = {
        "queue": queue,
        "id": taken.id,
        "event": None,
        "attempt": taken.attempt,
        "error": error,
        "receiver": None,
        "final": True,
    }
    return record, info
