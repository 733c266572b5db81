"""``Worker`` on asyncio: up to ``concurrency`` messages in flight in one process.

A dispatcher (the task running ``run()``) takes messages, hands them to the lanes
(``_lanes``) and acknowledges what they finish; a heartbeat task keeps the leases.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from zevents._signals import installed_signal_handlers, stop_handlers
from zevents.aio.redis._flight import FlightState
from zevents.aio.redis._lanes import Lanes
from zevents.aio.redis._options import check_counts
from zevents.aio.redis._outage import Outage
from zevents.aio.redis.consumer import Consumer
from zevents.aio.redis.heartbeat import Heartbeat
from zevents.aio.redis.queue import RedisQueue
from zevents.aio.redis.registry import WorkerRegistry
from zevents.config import check_seconds
from zevents.errors import ConfigError, QueueError
from zevents.eventbus import Bus
from zevents.redis._rounds import after_ack, unsure_if_cut
from zevents.redis.defaults import DEFAULT_KEEP_ALIVE, DEFAULT_PREFETCH
from zevents.redis.keys import unique_name
from zevents.redis.message import Message
from zevents.redis.retry import RetryPolicy

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CONCURRENCY", "Worker"]

#: Messages one async worker runs at once by default.
DEFAULT_CONCURRENCY = 10
# Longest idle wait between polls; how long acknowledgements may wait (seconds).
_IDLE_MAX = 0.25
_ACK_EVERY = 0.2
_SHUTDOWN_CHECK = 1.0
_NOT_GIVEN_BACK = (
    "worker %s: could not give back messages (%s); their leases will expire and another "
    "worker will take them"
)


def _default_bus() -> Bus:
    from zevents.eventbus import default_bus

    return default_bus


def _resolve(future: asyncio.Future[None]) -> None:
    """Wake what awaits ``future`` (a dispatcher's wake-up), unless already woken."""
    if not future.done():
        future.set_result(None)


def _honour_cancellation() -> None:
    """Raise ``CancelledError`` if this task was asked to stop and the request got lost:
    Python 3.11's ``wait_for`` (which redis-py awaits on every command) returns normally
    when a cancellation lands just as what it waits for ends (CPython gh-86296), but the
    request stays counted on the task."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError


def _registry_of(queues: list[RedisQueue]) -> WorkerRegistry:
    """The registry of the queues' server and key prefix (they must share one)."""
    prefixes = sorted({q.prefix for q in queues})
    if len(prefixes) == 1:
        return queues[0].registry()
    raise ConfigError(
        f"the queues use several key prefixes ({', '.join(prefixes)}): pass "
        "registry=WorkerRegistry(...) to say where this worker reports",
        option="registry",
    )


class Worker:
    """Takes messages from queues and fires each on ``bus``, up to ``concurrency`` at
    once, on the running event loop.

    The sync worker's guarantees, per message: leases renewed by a heartbeat task while
    receivers run, fenced settling, the same retries (``PermanentError``,
    ``WaitingError``, backoff to ``max_attempts``), serial groups, failed store and
    registry entry; messages are acknowledged in batches.

    Receivers run in registration order, as ``Bus.fire_async`` runs them: ``async def``
    ones are awaited (other messages run meanwhile); sync ones run on the loop and hold
    it up while they run (so a blocking one should move its work to a thread with
    ``asyncio.to_thread``). Nothing bounds how long an ``async def`` receiver runs: its
    lease is renewed while it does.

    It stops (``run()`` returns) on ``stop()``, SIGTERM or SIGINT (on the main thread),
    ``max_messages`` or a shutdown request in Redis, once the messages in flight are
    done; messages taken but not started go back. A second signal, or cancelling the
    task running ``run()``, interrupts the messages in flight: they go back to the queue
    without counting an attempt (a cancelled task re-raises ``CancelledError``).

    Args:
        queues: One ``zevents.aio.redis.RedisQueue`` or several (earlier served first).
        bus: The bus to fire on; default ``zevents.default_bus``.
        concurrency: Most messages in flight at once.
        keep_alive: Lease seconds; renewed every third of it while a message is held,
            and how often the worker looks for expired leases of dead workers.
        retry: The retry policy.
        max_messages: Stop after this many messages.
        prefetch: Most messages taken per round trip (fewer when messages are slow).
        serve: Serve only these priority levels (a list or a range string).
        registry: Where the worker records heartbeats and reads shutdown requests;
            default the registry of the first queue's server and key prefix.

    Raises:
        ConfigError: A bad option (``option`` names it).
    """

    def __init__(
        self,
        queues: RedisQueue | Iterable[RedisQueue],
        bus: Bus | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        *,
        keep_alive: float = DEFAULT_KEEP_ALIVE,
        retry: RetryPolicy | None = None,
        max_messages: int | None = None,
        prefetch: int = DEFAULT_PREFETCH,
        serve: str | Iterable[int] | None = None,
        registry: WorkerRegistry | None = None,
    ) -> None:
        served = [queues] if isinstance(queues, RedisQueue) else list(queues)
        if not served:
            raise ConfigError("a worker needs at least one queue", option="queues")
        if not all(isinstance(q, RedisQueue) for q in served):
            raise ConfigError(
                "an asyncio Worker takes zevents.aio.redis.RedisQueue queues (the same "
                "queues by name as zevents.redis.RedisQueue ones)",
                option="queues",
            )
        check_counts(concurrency=concurrency, prefetch=prefetch, max_messages=max_messages)
        self.queues, self.concurrency, self.prefetch = served, concurrency, prefetch
        self.keep_alive = check_seconds(keep_alive, "keep_alive", option="keep_alive")
        self.max_messages, self.retry = max_messages, retry or RetryPolicy()
        self.bus: Bus = bus if bus is not None else _default_bus()
        self.registry = registry if registry is not None else _registry_of(served)
        self.id = unique_name()
        self.state = FlightState(self.id, [q.name for q in served], concurrency)
        self.consumers: list[Consumer] = []
        self._serve = serve
        self._lanes = Lanes(self, concurrency)
        self._stopping = self._hurry = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # What the dispatcher waits on now (set by stop() and by lanes with room).
        self._wakeup: asyncio.Future[None] | None = None
        self._outage = Outage()
        self._reclaim_again: set[int] = set()  # consumers whose reclaim is not done

    def __repr__(self) -> str:
        names = ", ".join(q.name for q in self.queues)
        return f"<aio Worker {self.id} of {names}, {self.state.running} in flight>"

    # --- control ------------------------------------------------------------------

    def stop(self) -> None:
        """End ``run()`` once the messages in flight are done; safe from signal
        handlers and other threads."""
        self._stopping = True
        self._poke()

    @property
    def is_stopping(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopping

    def _on_signal(self) -> None:
        if self._stopping:
            logger.info("worker %s: interrupting the messages in flight", self.id)
            self._hurry = True
        self.stop()

    def _poke(self) -> None:
        """Wake the dispatcher (from any thread, or a signal handler)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        if self._wakeup is not None:
            _resolve(self._wakeup)
        if self._hurry:
            self._lanes.cancel()

    async def run(self, *, handle_signals: bool = True) -> int:
        """Work until stopped (see the class).

        Args:
            handle_signals: On the main thread, SIGTERM and SIGINT stop the worker (a
                second one interrupts the messages in flight) and SIGHUP is ignored,
                while it runs. Pass False where the application handles signals itself
                (a web server: call ``stop()`` from its shutdown instead), or the worker
                would take them from it.

        Returns:
            The number of messages processed.

        Raises:
            ConfigError: A queue's recorded driver or levels differ from its options.
        """
        self._loop = asyncio.get_running_loop()
        handlers = stop_handlers(lambda: self._on_signal()) if handle_signals else {}
        with installed_signal_handlers(handlers):
            heartbeat = self._heartbeat()
            self._lanes.start()
            try:
                await self._dispatch(heartbeat)
            except asyncio.CancelledError:
                self._lanes.cancel()
                raise
            finally:
                await self._shutdown(heartbeat)
        return self.processed

    @property
    def processed(self) -> int:
        """How many messages it processed (whatever their outcome)."""
        return self.state.processed

    def _heartbeat(self) -> Heartbeat:
        interval = max(0.05, min(self.keep_alive / 3, 10.0))
        ttl_ms = int(max(interval * 3, 5.0) * 1000)
        return Heartbeat(
            self.state, lambda: self.consumers, self.registry, interval=interval, ttl_ms=ttl_ms
        )

    # --- the dispatcher: take, hand to lanes, acknowledge ---------------------------

    async def _dispatch(self, heartbeat: Heartbeat) -> None:
        idle = next_reclaim = next_shutdown_check = 0.0
        while not self._stopping:
            _honour_cancellation()
            try:
                if not self.state.started_ms:
                    await self._start(heartbeat)
                now = time.monotonic()
                if now >= next_shutdown_check:
                    next_shutdown_check = now + _SHUTDOWN_CHECK
                    if await self._shutdown_requested():
                        break
                # Every consumer every keep_alive / 2; in between, those whose reclaim
                # is not done, a stream's once the lanes have room for what it brings
                # (streams hand the entries to this worker; the other drivers put them
                # back in line).
                periodic = now >= next_reclaim
                early = {
                    i
                    for i in self._reclaim_again
                    if not self.consumers[i].reclaims_to_itself or self._room() > 0
                }
                reclaimed = False
                if periodic or early:
                    reclaimed = await self._reclaim(None if periodic else early)
                if periodic:
                    next_reclaim = now + self.keep_alive / 2
                worked = await self._take() or reclaimed
                self._outage.over(self.id)
            except QueueError as exc:
                await self._wait(self._outage.next(self.id, exc))
                continue
            idle = 0.0 if worked else min(max(idle * 2, 0.01), _IDLE_MAX)
            await self._wait(idle if idle else _ACK_EVERY, for_room=not idle)

    async def _start(self, heartbeat: Heartbeat) -> None:
        """Open the queues' consumers, note the start time (Redis clock), beat."""
        if not self.consumers:
            self.consumers = [
                await q.consumer(lease=self.keep_alive, serve=self._serve) for q in self.queues
            ]
        self.state.started_ms = await self.registry.time_ms()
        heartbeat.start()

    async def _shutdown_requested(self) -> bool:
        if await self.registry.shutdown_requested_at() > self.state.started_ms:
            logger.info("worker %s: shutdown requested in Redis", self.id)
            return True
        return False

    def _room(self) -> int:
        """How many more messages to take now: free lanes, plus enough to keep them
        busy for the next round trip (none ahead while messages are slow)."""
        state = self.state
        room = self.concurrency + self._lanes.ahead(self.prefetch) - state.waiting - state.running
        if self.max_messages is not None:
            room = min(room, self.max_messages - state.processed - state.waiting - state.running)
        return max(0, min(room, self.prefetch))

    async def _take(self) -> bool:
        """Take what there is room for from the first queue that has any, acknowledging
        that queue's finished messages in the same round trip (the others' on their
        own); whether the lanes have work."""
        room = self._room()
        took = False
        for index, consumer in enumerate(self.consumers):
            if took or not room or self._stopping:
                await self.flush(index)
                continue
            acks = self.state.acks(index)
            with unsure_if_cut(self.state.unsure, acks):
                lost, taken = (
                    await consumer.ack_and_take(acks, room, self.state.records_of(acks))
                    if acks
                    else ([], await consumer.take(room))
                )
            self._acked(index, acks, lost)
            if taken:
                self._lanes.give(index, taken)
                took = True
        return took or not room

    async def _reclaim(self, only: set[int] | None = None) -> bool:
        """Recover the expired leases of every consumer (or of those in ``only``); see
        the sync ``Worker._reclaim``."""
        worked = False
        again = self._reclaim_again - only if only is not None else set()
        for index, consumer in enumerate(self.consumers):
            if only is not None and index not in only:
                continue
            taken = await consumer.reclaim(self.retry.max_attempts)
            if taken.more:
                again.add(index)
            if taken:
                worked = True
                self._lanes.give(index, taken)
        self._reclaim_again = again
        return worked or bool(again)

    async def flush(self, index: int) -> None:
        """Acknowledge the finished messages of consumer ``index``."""
        acks = self.state.acks(index)
        if not acks:
            return
        with unsure_if_cut(self.state.unsure, acks):
            lost = await self.consumers[index].ack(acks, self.state.records_of(acks))
        self._acked(index, acks, lost)

    def _acked(self, index: int, acks: list[Message], lost: list[str]) -> None:
        self.state.acked(index, acks)
        after_ack(logger, self.id, acks, lost, self.state.unsure)

    async def _wait(self, seconds: float, *, for_room: bool = False) -> None:
        """Sleep up to ``seconds``, woken by ``stop()`` and by a lane that finished a
        message while few wait; ``for_room``: not at all if the lanes want more now."""
        if self._stopping:
            return
        if for_room and self._room() and self.state.waiting <= self._lanes.low_water:
            return
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup = loop.create_future()
        self._lanes.want_room(wakeup)
        # Awaited itself (not through asyncio.wait, two loop turns later): a lane that
        # resolves it and yields once lets this task send the next take at once.
        timer = loop.call_later(seconds, _resolve, wakeup)
        try:
            await wakeup
        finally:
            timer.cancel()
            self._wakeup = None
            self._lanes.want_room(None)

    # --- stopping -------------------------------------------------------------------

    async def _shutdown(self, heartbeat: Heartbeat) -> None:
        """Let the lanes finish (or interrupt them), give back what was not finished,
        acknowledge what was, leave the groups, stop beating, leave the registry."""
        self._stopping = True
        await self._lanes.join()
        for index, consumer in enumerate(self.consumers):
            try:
                await self.flush(index)
                await consumer.release(self.state.give_back(index))
                await consumer.settled()
                await consumer.leave()
            except QueueError as exc:
                logger.warning(_NOT_GIVEN_BACK, self.id, exc)
        await heartbeat.stop()
        try:
            await self.registry.forget(self.id)
        except QueueError as exc:
            logger.debug("worker %s: could not remove its registry entry: %s", self.id, exc)

    # --- what it did, what the lanes call ---------------------------------------------

    @property
    def in_flight(self) -> int:
        """How many messages its receivers are running now."""
        return self.state.running

    def counted(self) -> None:
        """A lane finished a message: stop at ``max_messages``."""
        self.state.processed += 1
        if self.max_messages is not None and self.state.processed >= self.max_messages:
            self.stop()

    def hook_failed(self, event: str, exc: Exception) -> None:
        """A hook receiver raised (logged; the message is settled all the same)."""
        logger.error("worker %s: a %s receiver raised", self.id, event, exc_info=exc)

    def settle_lost(self, message_id: str, what: str) -> None:
        """Settling found the lease lost (another worker took the message over)."""
        logger.warning("worker %s: lease of %s was lost; %s", self.id, message_id, what)

    def settle_failed(self, message_id: str, exc: QueueError) -> None:
        """Settling failed on a Redis error: the lease expires, the message comes back."""
        logger.warning(
            "worker %s: could not settle %s (%s); its lease will expire and it will run again",
            self.id,
            message_id,
            exc,
        )
