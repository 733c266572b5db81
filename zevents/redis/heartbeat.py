"""``Heartbeat``: the thread that keeps a worker's leases and registry entry alive."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from zevents.errors import QueueError
from zevents.redis._rounds import renewed_unseen
from zevents.redis._state import WorkerState
from zevents.redis.consumer import Consumer
from zevents.redis.registry import WorkerRegistry

logger = logging.getLogger(__name__)

__all__ = ["Heartbeat"]


class Heartbeat:
    """Renews the leases of every message a worker holds and records the worker in its
    registry, every ``interval`` seconds, on a thread of its own.

    Receivers that block the worker's thread keep their leases this way; a worker that
    dies stops beating, so its leases expire and its registry entry goes stale.

    Args:
        registry: Where the worker is recorded.
        consumers: The worker's consumers, one per queue (same order as ``state``).
        state: What the worker holds and reports; read, never written, here.
        interval: Seconds between beats.
        ttl_ms: How long one beat keeps the registry entry alive.
    """

    def __init__(
        self,
        registry: WorkerRegistry,
        consumers: Sequence[Consumer],
        state: WorkerState,
        *,
        interval: float,
        ttl_ms: int,
    ) -> None:
        self.registry = registry
        self.consumers = list(consumers)
        self.state = state
        self.interval = interval
        self.ttl_ms = ttl_ms
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"zevents-beat-{state.worker_id}", daemon=True
        )

    def start(self) -> None:
        """Start beating (at once, then every ``interval``)."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop beating; waits up to ``timeout`` seconds for the thread."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def beat(self) -> None:
        """One beat: renew every held lease, then the registry entry (unless stopping)."""
        for index, consumer in enumerate(self.consumers):
            held = self.state.held(index)
            if not held:
                continue
            lost = set(consumer.touch(held))
            # Acknowledged meanwhile is fine; still held means taken over, unless an
            # interrupted acknowledgement may have done it (read first: an
            # acknowledgement that ends between the two reads leaves both).
            unsure = set(self.state.unsure)
            lost &= {t.id for t in self.state.held(index)}
            lost -= renewed_unseen(logger, self.state.worker_id, lost, unsure)
            if lost:
                logger.warning(
                    "worker %s: lease lost on %s", self.state.worker_id, sorted(lost)[:5]
                )
        if not self._stopped.is_set():
            self.registry.beat(self.state.worker_id, self.state.describe(), self.ttl_ms)

    def _loop(self) -> None:
        while True:
            try:
                self.beat()
            except QueueError as exc:
                logger.debug("worker %s: heartbeat failed: %s", self.state.worker_id, exc)
            if self._stopped.wait(self.interval):
                return
