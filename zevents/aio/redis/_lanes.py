"""The lanes of an async worker (private): ``concurrency`` tasks that run messages.

Each lane takes the next waiting message, decodes it, runs its receivers, and settles
it as ``zevents.redis.settling`` decides, exactly as the sync worker does one message;
the worker's dispatcher keeps the lanes fed and acknowledges what they finish.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from zevents.aio.redis._flight import FlightState
from zevents.aio.redis._receivers import firing, outcome_of
from zevents.aio.redis.consumer import Consumer
from zevents.errors import DecodeError, QueueError
from zevents.eventbus import Bus
from zevents.events import WORKER_AFTER, WORKER_BEFORE, WORKER_FAILED
from zevents.redis._current import _current
from zevents.redis._outcome import OK, Outcome
from zevents.redis._state import resident_memory
from zevents.redis.message import Message, Taken
from zevents.redis.protocol.finished import encode_finished
from zevents.redis.retry import RetryPolicy
from zevents.redis.settling import Settle, before_info, settlement, undecodable

__all__ = ["LaneHost", "Lanes"]

# Seconds of work the lanes should have waiting beyond those running.
_BATCH_TIME = 0.05


class LaneHost(Protocol):
    """What the lanes need of their worker."""

    bus: Bus
    retry: RetryPolicy
    state: FlightState
    prefetch: int

    @property
    def consumers(self) -> Sequence[Consumer]:
        """Its consumers, one per queue."""
        ...

    @property
    def is_stopping(self) -> bool:
        """Whether the worker is stopping (lanes take no new message)."""
        ...

    def counted(self) -> None:
        """A lane finished a message."""
        ...

    def hook_failed(self, event: str, exc: Exception) -> None:
        """A hook receiver raised."""
        ...

    def settle_lost(self, message_id: str, what: str) -> None:
        """Settling found the lease lost."""
        ...

    def settle_failed(self, message_id: str, exc: QueueError) -> None:
        """Settling failed on a Redis error."""
        ...


class Lanes:
    """The tasks that run a worker's messages, at most ``count`` at once.

    Args:
        worker: The worker (its consumers, bus, retry policy and state).
        count: How many lanes (the worker's ``concurrency``).
    """

    def __init__(self, worker: LaneHost, count: int) -> None:
        self.worker = worker
        self.count = count
        self._fire = firing(worker.bus)
        self._tasks: list[asyncio.Task[None]] = []
        self._idle: deque[asyncio.Future[None]] = deque()
        self._room_wanted: asyncio.Future[None] | None = None
        self._spreading = False
        # Seconds one message takes (a running average; start as if slow), and the
        # waiting count at which the dispatcher takes more (kept by the dispatcher).
        self._avg = 1.0
        self.low_water = 0
        # Whether the before, after and failed hooks have receivers.
        self._hooks: tuple[bool, ...] = (False, False, False)

    def _see_hooks(self) -> None:
        """Note which worker hooks have receivers (once a batch, not once a message)."""
        bus = self.worker.bus
        self._hooks = tuple(
            bus.has_receivers(e) for e in (WORKER_BEFORE, WORKER_AFTER, WORKER_FAILED)
        )

    def start(self) -> None:
        """Start the lanes on the running loop."""
        self._see_hooks()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._lane()) for _ in range(self.count)]

    def give(self, index: int, batch: list[Taken]) -> None:
        """Messages taken from consumer ``index``: an idle lane starts on them (and wakes
        the next one if its message waits on something; see ``_spread``)."""
        self._see_hooks()
        self.worker.state.add(index, batch)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._idle:
            future = self._idle.popleft()
            if not future.done():
                future.set_result(None)
                return

    def _spread(self) -> None:
        """Run once the loop gets control back from a lane: its message is waiting on
        something (or it went idle), so if messages still wait another lane starts.
        Messages that never wait (a no-op receiver) then all run in one lane, without
        waking every other lane for nothing."""
        self._spreading = False
        if self.worker.state.waiting:
            self._wake_one()

    def ahead(self, prefetch: int) -> int:
        """How many messages to hold beyond the running ones: two takes' worth, each the
        lanes' work for the next ``_BATCH_TIME`` (none while messages are slow) and at
        most ``prefetch``. One take's worth is the ``low_water`` mark, at or below which
        the dispatcher takes more: the lanes then still have a take's worth to run while
        Redis works on the next (it costs Redis about as long as the lanes take to run
        what it brings, on quick messages)."""
        one = min(prefetch, int(self.count / max(self._avg, 1e-6) * _BATCH_TIME))
        self.low_water = one
        return 2 * one

    def want_room(self, wakeup: asyncio.Future[None] | None) -> None:
        """Resolve ``wakeup`` when a lane finishes a message and few are waiting (None:
        nobody waits)."""
        self._room_wanted = wakeup

    def cancel(self) -> None:
        """Interrupt every lane (their messages go back unsettled)."""
        for task in self._tasks:
            task.cancel()

    async def join(self) -> None:
        """Wait for the lanes to end (the worker is stopping: idle ones end now, busy ones
        after their message)."""
        while self._idle:
            future = self._idle.popleft()
            if not future.done():
                future.set_result(None)
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _lane(self) -> None:
        worker, state = self.worker, self.worker.state
        loop = asyncio.get_running_loop()
        while not worker.is_stopping:
            item = state.next()
            if item is None:
                idle: asyncio.Future[None] = loop.create_future()
                self._idle.append(idle)
                await idle
                continue
            index, taken = item
            if state.waiting and not self._spreading:
                self._spreading = True
                loop.call_soon(self._spread)
            started = time.perf_counter()
            try:
                await self._process(index, taken)
            except asyncio.CancelledError:
                state.interrupt(taken)
                raise
            self._avg = 0.5 * self._avg + 0.5 * (time.perf_counter() - started)
            worker.counted()
            wakeup = self._room_wanted
            if wakeup is not None and state.waiting <= self.low_water and not wakeup.done():
                wakeup.set_result(None)
                # Let the dispatcher send the next take now, before this lane runs the
                # messages still waiting (one that never awaits would otherwise keep
                # the loop until none is left, and Redis would idle meanwhile).
                await asyncio.sleep(0)

    # --- one message: decode, run, settle -------------------------------------------

    async def _process(self, index: int, taken: Taken) -> None:
        worker = self.worker
        consumer = worker.consumers[index]
        try:
            message = consumer.decode(taken)
        except DecodeError as exc:
            record, hook = undecodable(consumer.queue, taken, f"DecodeError: {exc}")
            await self._settle(taken, consumer.fail(taken, record), "not storing it as failed")
            if self._hooks[2]:
                await self._hook(WORKER_FAILED, hook)
            return
        worker.state.decoded(index, message)
        before, after, failed = self._hooks
        info = before_info(message) if before or after or failed else {}
        if before:
            await self._hook(WORKER_BEFORE, info)
        memory = resident_memory() if consumer.keep_finished is not None else None
        started = time.perf_counter()
        context = _current.set(message)  # current() in this lane's task
        try:
            await self._fire(message.event, message.payload)
        except Exception as exc:
            outcome = outcome_of(exc)
        else:
            outcome = OK
        finally:
            _current.reset(context)
        took = time.perf_counter() - started
        if outcome is OK:  # finished: acknowledged with the next batch
            now = resident_memory() if after or memory is not None else 0
            kept = None
            if memory is not None:  # its queue keeps finished records
                kept = encode_finished(message, worker.state.worker_id, took, memory, now)
            worker.state.finish(message, kept)
            if after:
                await self._hook(WORKER_AFTER, {**info, "duration": took, "memory": now})
            return
        await self._settle_failure(index, message, outcome, took)

    async def _settle_failure(
        self, index: int, message: Message, outcome: Outcome, took: float
    ) -> None:
        """Retry, wait or fail a message whose receivers raised; fire the failed hook."""
        decided = settlement(outcome, message, self.worker.retry)
        consumer = self.worker.consumers[index]
        if decided.kind is Settle.FAIL:
            failing = consumer.fail(message, decided.record or b"{}")
            await self._settle(message.taken, failing, "not storing it as failed")
        else:
            again = consumer.retry(
                message, decided.delay or 0.0, count_attempt=decided.kind is Settle.RETRY
            )
            await self._settle(message.taken, again, "its retry is left to the new holder")
        failed = decided.failed_info(outcome, took)
        if failed is not None and self._hooks[2]:
            await self._hook(WORKER_FAILED, {**before_info(message), **failed})

    async def _settle(self, taken: Taken, settling: Any, if_lost: str) -> None:
        """Await a fail or retry of ``taken``; a lost lease or a Redis error is logged
        (the message then comes back to some worker when its lease expires)."""
        try:
            if not await settling:
                self.worker.settle_lost(taken.id, if_lost)
        except QueueError as exc:
            self.worker.settle_failed(taken.id, exc)
        # Not on cancellation: an interrupted message is given back (fenced, so one
        # whose settling got through is left alone).
        self.worker.state.drop(taken)

    async def _hook(self, event: str, payload: dict[str, Any]) -> None:
        """Fire a worker hook (its receivers checked by the caller); one that raises is
        logged."""
        try:
            await self._fire(event, payload)
        except Exception as exc:
            self.worker.hook_failed(event, exc)
