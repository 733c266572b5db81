"""``Heartbeat``: the task that keeps an async worker's leases and registry entry alive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from zevents.aio.redis._flight import FlightState
from zevents.aio.redis.consumer import Consumer
from zevents.aio.redis.registry import WorkerRegistry
from zevents.errors import QueueError
from zevents.redis._rounds import renewed_unseen
from zevents.redis.defaults import DEFAULT_SOCKET_TIMEOUT

logger = logging.getLogger(__name__)

__all__ = ["Heartbeat"]


class Heartbeat:
    """Renews the lease of every message a worker holds and records the worker in its
    registry, every ``interval`` seconds, as a task on the worker's loop.

    An ``async def`` receiver that awaits keeps its lease this way for as long as it
    runs; a sync receiver that blocks the loop blocks the beats too (its lease expires
    after ``keep_alive``). A worker that dies stops beating.

    Args:
        state: The worker's holdings and report (only read here).
        consumers: Gives the worker's consumers, in the order of ``state``'s queues.
        registry: Where the beats go.
        interval: Seconds from one beat to the next.
        ttl_ms: Milliseconds a beat keeps the worker listed.
    """

    def __init__(
        self,
        state: FlightState,
        consumers: Callable[[], Sequence[Consumer]],
        registry: WorkerRegistry,
        *,
        interval: float,
        ttl_ms: int,
    ) -> None:
        self.state, self.consumers, self.registry = state, consumers, registry
        self.interval, self.ttl_ms = interval, ttl_ms
        self._task: asyncio.Task[None] | None = None
        self._stopped: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Start beating (at once, then every ``interval``)."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._stopped = loop.create_future()
            self._task = loop.create_task(self._loop(self._stopped))

    async def stop(self) -> None:
        """Stop beating: the beat in flight ends first (each of its calls is bounded by
        the socket timeout); one that does not end in ``timeout`` is cancelled."""
        task, stopped = self._task, self._stopped
        self._task = self._stopped = None
        if task is None or stopped is None:
            return
        stopped.set_result(None)
        # Not a cancellation: one that lands as a redis-py call ends can be lost (the
        # wait_for of Python 3.11), and the beat would carry on.
        done, _ = await asyncio.wait({task}, timeout=self.interval + DEFAULT_SOCKET_TIMEOUT)
        if not done:
            task.cancel()

    async def beat(self) -> None:
        """One beat: renew every held lease, then the registry entry."""
        state = self.state
        for index, consumer in enumerate(self.consumers()):
            lost = set(await consumer.touch(state.held(index)))
            lost &= {t.id for t in state.held(index)}  # acknowledged meanwhile is fine
            lost -= renewed_unseen(logger, state.worker_id, lost, state.unsure)  # one task
            if lost:
                logger.warning("worker %s: lease lost on %s", state.worker_id, sorted(lost)[:5])
        await self.registry.beat(state.worker_id, state.describe(), self.ttl_ms)

    async def _loop(self, stopped: asyncio.Future[None]) -> None:
        while not stopped.done():
            try:
                await self.beat()
            except QueueError as exc:
                logger.debug("worker %s: heartbeat failed: %s", self.state.worker_id, exc)
            await asyncio.wait({stopped}, timeout=self.interval)
