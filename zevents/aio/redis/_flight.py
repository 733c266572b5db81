"""What an async worker holds (private): messages waiting for a lane, running, and
finished but not yet acknowledged, per consumer; and what its heartbeat reports.

Everything here runs on the worker's event loop, so nothing needs a lock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from zevents.redis._state import WorkerState
from zevents.redis.message import Message, Taken

__all__ = ["FlightState"]


class FlightState:
    """Every message an async worker holds a lease on, and its counts.

    Args:
        worker_id: The worker's id.
        queues: The names of its queues, one per consumer (earlier ones first).
        concurrency: How many messages may run at once.
    """

    def __init__(self, worker_id: str, queues: Sequence[str], concurrency: int) -> None:
        self.worker_id = worker_id
        self.queues = list(queues)
        self.concurrency = concurrency
        self.processed = 0
        self.started_ms = 0
        self._waiting: list[deque[Taken]] = [deque() for _ in queues]
        self._waiting_count = 0
        # id(taken) -> (consumer index, taken, its message once decoded)
        self._running: dict[int, tuple[int, Taken, Message | None]] = {}
        self._acks: list[list[Message]] = [[] for _ in queues]
        # id(message) -> its finished record, for queues that keep them (keep_finished).
        self._records: dict[int, bytes] = {}
        self._interrupted: list[list[Taken]] = [[] for _ in queues]
        #: As ``WorkerState.unsure``.
        self.unsure: set[str] = set()
        # The sync worker's report, reused: its fields are the registry's format.
        self._report = WorkerState(worker_id, queues)

    # --- counts ----------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Messages taken and not started."""
        return self._waiting_count

    @property
    def running(self) -> int:
        """Messages whose receivers are running."""
        return len(self._running)

    # --- the life of a message -------------------------------------------------------

    def add(self, index: int, batch: Sequence[Taken]) -> None:
        """A batch was taken from consumer ``index``: it waits for lanes."""
        self._waiting[index].extend(batch)
        self._waiting_count += len(batch)

    def next(self) -> tuple[int, Taken] | None:
        """The next message for a free lane (earlier queues first), now running."""
        if not self._waiting_count:
            return None
        for index, waiting in enumerate(self._waiting):
            if waiting:
                taken = waiting.popleft()
                self._waiting_count -= 1
                self._running[id(taken)] = (index, taken, None)
                return index, taken
        return None  # pragma: no cover - the count says there is one

    def decoded(self, index: int, message: Message) -> None:
        """The running ``message`` was decoded (what the heartbeat reports)."""
        self._running[id(message.taken)] = (index, message.taken, message)

    def finish(self, message: Message, record: bytes | None = None) -> None:
        """``message`` succeeded: it waits for the next batched acknowledgement, with its
        finished ``record`` if its queue keeps them."""
        index = self._running.pop(id(message.taken))[0]
        self._acks[index].append(message)
        if record is not None:
            self._records[id(message)] = record

    def drop(self, taken: Taken) -> None:
        """The running ``taken`` was settled otherwise (retried, failed)."""
        self._running.pop(id(taken), None)

    def interrupt(self, taken: Taken) -> None:
        """The running ``taken`` was cancelled: it goes back unsettled."""
        entry = self._running.pop(id(taken), None)
        if entry is not None:
            self._interrupted[entry[0]].append(taken)

    def acks(self, index: int) -> list[Message]:
        """The messages waiting for acknowledgement."""
        return list(self._acks[index])

    def records_of(self, acks: Sequence[Message]) -> list[bytes] | None:
        """The finished records of ``acks``, in order (None when none is kept)."""
        if not self._records:
            return None
        return [self._records.get(id(message), b"") for message in acks]

    def acked(self, index: int, done: Sequence[Message]) -> None:
        """The first ``len(done)`` waiting messages were acknowledged (their records
        written, or lost with their acknowledgement)."""
        del self._acks[index][: len(done)]
        if self._records:
            for message in done:
                self._records.pop(id(message), None)

    def give_back(self, index: int) -> list[Taken]:
        """Take the messages never started or interrupted, to release them."""
        back = [*self._interrupted[index], *self._waiting[index]]
        self._waiting_count -= len(self._waiting[index])
        self._waiting[index].clear()
        self._interrupted[index].clear()
        return back

    def held(self, index: int) -> list[Taken]:
        """Every message whose lease consumer ``index`` must keep renewing."""
        running = [taken for i, taken, _ in self._running.values() if i == index]
        return [*self._waiting[index], *running, *(m.taken for m in self._acks[index])]

    # --- what the heartbeat reports --------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The worker's registry entry: the sync worker's fields (about its oldest running
        message), with ``in_flight`` and ``concurrency``."""
        report = self._report
        report.current = next((m for _, _, m in self._running.values() if m is not None), None)
        report.processed, report.started_ms = self.processed, self.started_ms
        entry = report.describe()
        entry.update(in_flight=len(self._running), concurrency=self.concurrency)
        return entry
