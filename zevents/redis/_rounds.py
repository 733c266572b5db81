"""A worker's round trips to Redis (private): acknowledge what it finished, take the
next batch, and send that round trip ahead while a batch is worked.

A worker of quick messages spends as long waiting for Redis as running receivers. Sent
ahead (``Runner.begin``), the next round trip is worked by Redis on the other core while
the worker's thread runs this batch's receivers, and its reply is read when the batch is
done: the two overlap instead of taking turns.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zevents.redis._state import WorkerState
from zevents.redis.consumer import Consumer
from zevents.redis.message import Message, Taken

if TYPE_CHECKING:
    from zevents.redis._client import Begun

logger = logging.getLogger(__name__)

__all__ = [
    "ACKED_UNSEEN",
    "LOST_BEFORE_ACK",
    "Found",
    "Rounds",
    "after_ack",
    "renewed_unseen",
    "report_lost",
    "unsure_if_cut",
]

#: A lease lost before its message was acknowledged (the sync and asyncio workers).
LOST_BEFORE_ACK = (
    "worker %s: lease lost on %d message(s) before acknowledgement (another worker took "
    "them over): %s"
)
#: The same, for messages an earlier call was acknowledging when it failed or was
#: interrupted before its reply: Redis may well have acknowledged them then.
ACKED_UNSEEN = (
    "worker %s: %d message(s) were no longer leased when %s: acknowledged by the earlier "
    "call that was interrupted before its reply (or, if that call never reached Redis, "
    "taken over by another worker since): %s"
)

#: A consumer's index and the batch taken from it.
Found = tuple[int, list[Taken]]


@dataclass(slots=True)
class _Ahead:
    """A round trip sent while a batch is worked: acknowledge ``acks`` (of the first
    queue) and take up to ``count`` of its messages."""

    begun: Begun[tuple[list[str], list[Taken]]]
    acks: list[Message]
    count: int
    sent: float  # time.monotonic()


class Rounds:
    """The round trips of one worker: at most one is sent ahead at a time.

    Only the first queue's round trip is sent ahead (when it is empty, the others are
    asked in turn when the reply is read), so earlier queues are still served first.

    Args:
        worker_id: The worker's id, for log lines.
        consumers: Its consumers, one per queue.
        state: Its state (what it holds leases on).
        lease: Seconds of a lease.
    """

    def __init__(
        self, worker_id: str, consumers: Sequence[Consumer], state: WorkerState, lease: float
    ) -> None:
        self.worker_id = worker_id
        self.consumers = consumers
        self.state = state
        self.lease = lease
        #: id(message) -> its finished record, until acknowledged.
        self.records: dict[int, bytes] = {}
        self._ahead: _Ahead | None = None
        self._ready: Found | None = None  # a batch whose reply was read early

    @property
    def pending(self) -> bool:
        """Whether a round trip was sent ahead (or its batch waits)."""
        return self._ahead is not None or self._ready is not None

    def next(self, count: int) -> Found | None:
        """The batch of the round trip sent ahead if there is one, else a round trip now
        (see ``now``)."""
        if self._ready is not None:
            found, self._ready = self._ready, None
            return found
        if self._ahead is not None:
            return self.finish()
        return self.now(count)

    def now(self, count: int, first: int = 0) -> Found | None:
        """Acknowledge what every consumer finished and take up to ``count`` messages
        from the first (from ``first`` on) that has some, one round trip per consumer;
        None when the queues are empty."""
        found = None
        for index in range(first, len(self.consumers)):
            taken = self.flush(index, take=count if found is None else 0)
            if taken:
                found = (index, taken)
        return found

    def send_ahead(self, count: int) -> None:
        """Send the first queue's next round trip (acknowledge, take ``count``) now, to
        be read by ``next`` or ``finish``."""
        if self.pending:
            raise RuntimeError("a round trip was already sent ahead")
        acks = self.state.acks(0)
        with unsure_if_cut(self.state.unsure, acks):
            begun = self.consumers[0].begin_ack_and_take(acks, self._records_of(acks), count)
        self._ahead = _Ahead(begun, acks, count, time.monotonic())

    def finish(self) -> Found | None:
        """Read the round trip sent ahead, if any: the batch it took (its leases are
        renewed from now on; one held past half the lease is renewed first, and the
        messages lost meanwhile are dropped), else the next round of the other queues.

        Raises:
            QueueError: Redis failed; what it was acknowledging is acknowledged again
                by the next round trip.
        """
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        with unsure_if_cut(self.state.unsure, ahead.acks):
            lost, taken = ahead.begun.finish()
        self._acked(0, ahead.acks, lost)
        if taken and time.monotonic() - ahead.sent > self.lease / 2:
            gone = set(self.consumers[0].touch(taken))
            if gone:
                logger.warning(
                    "worker %s: lease lost on %d message(s) taken ahead; left to their new holder",
                    self.worker_id,
                    len(gone),
                )
                taken = [t for t in taken if t.id not in gone]
        found = (0, taken) if taken else self.now(ahead.count, first=1)
        if found is not None:
            self.state.put_ahead(*found)
        return found

    def flush(self, index: int, take: int = 0) -> list[Taken]:
        """Acknowledge what consumer ``index`` finished, and take up to ``take`` more in
        the same round trip; returns those taken. A round trip sent ahead is read first
        (it may be acknowledging some of them); its batch waits for ``next``."""
        if self._ahead is not None:
            self._ready = self.finish()
        acks = self.state.acks(index)
        consumer = self.consumers[index]
        if not acks:
            return consumer.take(take) if take else []
        records = self._records_of(acks)
        with unsure_if_cut(self.state.unsure, acks):
            if take:
                lost, taken = consumer.ack_and_take(acks, records, take)
            else:
                lost, taken = consumer.ack(acks, records), []
        self._acked(index, acks, lost)
        return taken

    def _records_of(self, acks: list[Message]) -> list[bytes] | None:
        return [self.records.get(id(m), b"") for m in acks] if self.records else None

    def _acked(self, index: int, acks: list[Message], lost: list[str]) -> None:
        self.state.acked(index, acks)
        if self.records:
            for message in acks:
                self.records.pop(id(message), None)
        after_ack(logger, self.worker_id, acks, lost, self.state.unsure)


@contextlib.contextmanager
def unsure_if_cut(unsure: set[str], acks: Sequence[Message]) -> Iterator[None]:
    """Around a call that acknowledges ``acks``: if it ends without its reply (a Redis
    error, a timeout, a cancellation), Redis may have acknowledged them, so they join
    ``unsure`` and a later "lease lost" on them is no news of another worker (the next
    round trip acknowledges them again)."""
    try:
        yield
    except BaseException:
        unsure.update(m.id for m in acks)
        raise


def after_ack(
    log: logging.Logger, worker_id: str, acks: Sequence[Message], lost: list[str], unsure: set[str]
) -> None:
    """An acknowledgement of ``acks`` came back: log its ``lost`` ids (``report_lost``),
    and ``acks`` are settled, no longer unsure."""
    if lost:
        report_lost(log, worker_id, lost, unsure)
    if unsure:
        unsure.difference_update(m.id for m in acks)


def report_lost(log: logging.Logger, worker_id: str, lost: list[str], unsure: set[str]) -> None:
    """Log on ``log`` the ids whose lease was lost before an acknowledgement: at INFO
    those an interrupted call was acknowledging (``unsure``), at WARNING the others."""
    again = [i for i in lost if i in unsure]
    others = [i for i in lost if i not in unsure]
    if again:
        log.info(ACKED_UNSEEN, worker_id, len(again), "acknowledged again", again[:5])
    if others:
        log.warning(LOST_BEFORE_ACK, worker_id, len(others), others[:5])


def renewed_unseen(
    log: logging.Logger, worker_id: str, lost: set[str], unsure: set[str]
) -> set[str]:
    """Of the ids a lease renewal found lost, those an interrupted acknowledgement may
    have acknowledged (logged on ``log`` at INFO): the caller warns about the rest."""
    again = lost & unsure
    if again:
        log.info(ACKED_UNSEEN, worker_id, len(again), "renewed", sorted(again)[:5])
    return again
