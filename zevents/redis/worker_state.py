"""Bookkeeping of a worker's leased messages, and small helpers (private)."""

from __future__ import annotations

import logging
import os
import resource
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson
import redis

from zevents.redis import heartbeat
from zevents.redis.message import Message, Taken

if TYPE_CHECKING:
    from zevents.redis.worker import Worker

logger = logging.getLogger(__name__)

__all__ = ["InHand", "beat_loop", "describe", "failure_record", "resident_memory"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class InHand:
    """Every message a worker holds a lease on, per queue: not started, being processed,
    or processed and waiting for a batched acknowledgement. The heartbeat thread renews
    the leases of all of them."""

    def __init__(self, queues: int) -> None:
        self._lock = threading.Lock()
        self._unstarted: list[list[Taken]] = [[] for _ in range(queues)]
        self._running: list[Taken | None] = [None] * queues
        self._acks: list[list[Taken]] = [[] for _ in range(queues)]
        self.current: Message | None = None

    def add(self, index: int, batch: list[Taken]) -> None:
        with self._lock:
            self._unstarted[index] = list(batch)

    def start(self, index: int, taken: Taken) -> None:
        with self._lock:
            if self._unstarted[index] and self._unstarted[index][0] is taken:
                self._unstarted[index].pop(0)
            self._running[index] = taken

    def finish(self, index: int, taken: Taken) -> None:
        with self._lock:
            self._running[index] = None
            self._acks[index].append(taken)

    def drop(self, index: int) -> None:
        with self._lock:
            self._running[index] = None

    def acks(self, index: int) -> list[Taken]:
        with self._lock:
            return list(self._acks[index])

    def acked(self, index: int, done: list[Taken]) -> None:
        with self._lock:
            self._acks[index] = self._acks[index][len(done) :]

    def pop_unstarted(self, index: int) -> list[Taken]:
        with self._lock:
            unstarted, self._unstarted[index] = self._unstarted[index], []
            return unstarted

    def held(self, index: int) -> list[Taken]:
        with self._lock:
            running = self._running[index]
            return [*self._unstarted[index], *([running] if running else []), *self._acks[index]]


def failure_record(
    error: str, receiver: str | None, attempts: int, reason: str, message: Message | None = None
) -> bytes:
    """The JSON stored in the failed store (Redis adds ``failed_at``)."""
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


def resident_memory() -> int:
    """This process's resident memory in bytes (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def beat_loop(worker: Worker) -> None:
    """The heartbeat thread: renews the leases of held messages, records the worker."""
    interval = max(0.05, min(worker.keep_alive / 3, 10.0))
    ttl = int(max(interval * 3, 5.0) * 1000)
    queue = worker.queues[0]
    while True:
        try:
            for index, q in enumerate(worker.queues):
                held = worker._hand.held(index)
                if held:
                    lost = set(q.driver.touch(held, worker.lease_ms))
                    # Acknowledged meanwhile is fine; still held means taken over.
                    lost &= {t.id for t in worker._hand.held(index)}
                    if lost:
                        logger.warning("worker %s: lease lost on %s", worker.id, sorted(lost)[:5])
            if not worker._stopping:
                heartbeat.beat(queue.client, worker.id, describe(worker), ttl, queue.keys.prefix)
        except redis.RedisError as exc:
            logger.debug("worker %s: heartbeat failed: %s", worker.id, exc)
        if worker._stopping:
            return
        deadline = time.monotonic() + interval
        while not worker._stopping and time.monotonic() < deadline:
            time.sleep(min(0.05, interval))


def describe(worker: Worker) -> dict[str, Any]:
    """A worker's registry entry."""
    message = worker._hand.current
    return {
        "id": worker.id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": [q.name for q in worker.queues],
        "status": "processing" if message is not None else "idle",
        "message": message.id if message else None,
        "event": message.event if message else None,
        "message_status": message.status if message else None,
        "percent": message.percent if message else None,
        "processed": worker.processed,
        "started_at": worker._started_ms,
    }
