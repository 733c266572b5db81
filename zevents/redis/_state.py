"""What a worker holds and reports (private): its leased messages, counts, the message
in hand. The worker writes it; the heartbeat thread reads it."""

from __future__ import annotations

import os
import resource
import socket
import threading
from collections.abc import Sequence
from typing import Any

from zevents.redis.message import Message, Taken

__all__ = ["WorkerState", "resident_memory"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory() -> int:
    """This process's resident memory in bytes (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class WorkerState:
    """Every message a worker holds a lease on, per consumer (not started, being
    processed, or processed and waiting for a batched acknowledgement), and what its
    heartbeat reports.

    Args:
        worker_id: The worker's id.
        queues: The names of its queues, one per consumer.
    """

    def __init__(self, worker_id: str, queues: Sequence[str]) -> None:
        self.worker_id = worker_id
        self.queues = list(queues)
        self.processed = 0
        self.started_ms = 0
        self.current: Message | None = None
        self._lock = threading.Lock()
        self._unstarted: list[list[Taken]] = [[] for _ in queues]
        self._ahead: list[list[Taken]] = [[] for _ in queues]
        self._running: list[Taken | None] = [None] * len(queues)
        self._acks: list[list[Message]] = [[] for _ in queues]
        #: Ids an acknowledging call was sent for but that ended without its reply (a
        #: Redis timeout, a lost connection): Redis may have run it, so these may be
        #: acknowledged already (a renewal or the next acknowledgement finds them gone).
        self.unsure: set[str] = set()

    def add(self, index: int, batch: list[Taken]) -> None:
        """A batch from consumer ``index`` is being worked (it was taken just now, or
        ahead of time)."""
        with self._lock:
            self._unstarted[index] = list(batch)
            if self._ahead[index] is batch:
                self._ahead[index] = []

    def put_ahead(self, index: int, batch: list[Taken]) -> None:
        """A batch was taken from consumer ``index`` ahead of time, while another is
        worked: its leases are renewed from now on."""
        with self._lock:
            self._ahead[index] = batch

    def pop_ahead(self, index: int) -> list[Taken]:
        """Take the batch taken ahead of time and never worked."""
        with self._lock:
            ahead, self._ahead[index] = self._ahead[index], []
            return ahead

    def start(self, index: int, taken: Taken) -> None:
        """``taken`` is being processed."""
        with self._lock:
            if self._unstarted[index] and self._unstarted[index][0] is taken:
                self._unstarted[index].pop(0)
            self._running[index] = taken

    def finish(self, index: int, message: Message) -> None:
        """``message`` succeeded: it waits for the next batched acknowledgement."""
        with self._lock:
            self._running[index] = None
            self._acks[index].append(message)

    def drop(self, index: int) -> None:
        """The running message was settled otherwise (retried, failed) or abandoned."""
        with self._lock:
            self._running[index] = None

    def acks(self, index: int) -> list[Message]:
        """The messages waiting for acknowledgement."""
        with self._lock:
            return list(self._acks[index])

    def acked(self, index: int, done: list[Message]) -> None:
        """The first ``len(done)`` waiting messages were acknowledged."""
        with self._lock:
            self._acks[index] = self._acks[index][len(done) :]

    def pop_unstarted(self, index: int) -> list[Taken]:
        """Take the messages of the batch that were never started."""
        with self._lock:
            unstarted, self._unstarted[index] = self._unstarted[index], []
            return unstarted

    def held(self, index: int) -> list[Taken]:
        """Every message whose lease consumer ``index`` must keep renewing."""
        with self._lock:
            running = self._running[index]
            return [
                *self._ahead[index],
                *self._unstarted[index],
                *([running] if running else []),
                *(m.taken for m in self._acks[index]),
            ]

    def describe(self) -> dict[str, Any]:
        """The worker's registry entry."""
        message = self.current
        return {
            "id": self.worker_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.queues,
            "status": "processing" if message is not None else "idle",
            "message": message.id if message else None,
            "event": message.event if message else None,
            "message_status": message.status if message else None,
            "percent": message.percent if message else None,
            "processed": self.processed,
            "started_at": self.started_ms,
        }
