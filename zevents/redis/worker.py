"""``Worker``: takes messages from Redis queues and fires them on a bus."""

from __future__ import annotations

import logging
import select
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from zevents._signals import Waker, installed_signal_handlers, stop_handlers
from zevents.config import check_seconds
from zevents.errors import ConfigError, DecodeError, QueueError
from zevents.events import WORKER_AFTER, WORKER_BEFORE, WORKER_FAILED
from zevents.redis._current import _current
from zevents.redis._outcome import Outcome, run_forked, run_inline
from zevents.redis._rounds import Rounds
from zevents.redis._state import WorkerState, resident_memory
from zevents.redis.consumer import Consumer
from zevents.redis.defaults import DEFAULT_KEEP_ALIVE, DEFAULT_PREFETCH
from zevents.redis.heartbeat import Heartbeat
from zevents.redis.keys import unique_name
from zevents.redis.message import Message, Taken
from zevents.redis.protocol.finished import encode_finished
from zevents.redis.queue import RedisQueue
from zevents.redis.registry import WorkerRegistry
from zevents.redis.retry import RetryPolicy
from zevents.redis.settling import Settle, before_info, settlement, undecodable

if TYPE_CHECKING:
    from zevents.eventbus import Bus

logger = logging.getLogger(__name__)

__all__ = ["Worker"]

# Longest idle wait between polls, and the work a batch should hold (seconds).
_IDLE_MAX = 0.25
_BATCH_TIME = 0.05
_ACK_EVERY = 0.2
_SHUTDOWN_CHECK = 1.0
_OUTAGE_MAX = 10.0
# During an outage a warning is logged at least this often (seconds).
_OUTAGE_WARN_EVERY = 10.0
# Messages quicker than this on average (seconds) are worked while Redis takes the next
# batch; slower ones gain nothing from it, and would hold more leases.
_AHEAD_BELOW = 0.002


def _check_count(value: object, option: str, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{option} must be a whole number >= 1, not {value!r}", option=option)


class Worker:
    """Takes messages from queues and fires each on ``bus`` as ``(event, payload)``.

    A message is finished (acknowledged) when every receiver returned. A receiver
    raising ``PermanentError`` sends it to the failed store; ``WaitingError`` puts it
    back without counting an attempt; any other exception is a failed attempt, retried
    after the policy's backoff until ``max_attempts``.

    Args:
        queues: One queue or several (earlier queues are served first).
        bus: The bus to fire on; default ``zevents.default_bus``.
        retry: The retry policy.
        keep_alive: Lease seconds; renewed by a heartbeat while a receiver runs, and how
            often the worker looks for expired leases of dead workers.
        max_messages: Stop after this many messages.
        fork: Run each message in a child process.
        serve: Serve only these priority levels: a list, or a range string (``"10"``,
            ``"20-40"``, ``"25-"``, ``"-20"``); default all.
        prefetch: Most messages taken per round trip.
        registry: Where the worker records its heartbeats and reads shutdown requests;
            default the registry of the first queue's server and key prefix.

    Raises:
        ConfigError: A bad option (``option`` names it), or queues under different key
            prefixes without an explicit ``registry``.
    """

    def __init__(
        self,
        queues: RedisQueue | Iterable[RedisQueue],
        bus: Bus | None = None,
        *,
        retry: RetryPolicy | None = None,
        keep_alive: float = DEFAULT_KEEP_ALIVE,
        max_messages: int | None = None,
        fork: bool = False,
        serve: str | Iterable[int] | None = None,
        prefetch: int = DEFAULT_PREFETCH,
        registry: WorkerRegistry | None = None,
    ) -> None:
        self.queues = [queues] if isinstance(queues, RedisQueue) else list(queues)
        if not self.queues:
            raise ConfigError("a worker needs at least one queue", option="queues")
        self.keep_alive = check_seconds(keep_alive, "keep_alive", option="keep_alive")
        _check_count(max_messages, "max_messages", allow_none=True)
        _check_count(prefetch, "prefetch")
        if bus is None:
            from zevents.eventbus import default_bus

            bus = default_bus
        self.bus: Bus = bus
        self.retry = retry or RetryPolicy()
        self.max_messages = max_messages
        self.fork = fork
        self.prefetch = prefetch
        self.consumers: list[Consumer] = [
            q.consumer(lease=self.keep_alive, serve=serve) for q in self.queues
        ]
        self.registry = registry or self._default_registry()
        self.id = unique_name()
        self.state = WorkerState(self.id, [q.name for q in self.queues])
        self._stopping = False
        self._reclaim_again: set[int] = set()  # consumers whose reclaim is not done
        self._waker = Waker()
        self._avg = _BATCH_TIME
        self._warned_at = 0.0
        self._rounds = Rounds(self.id, self.consumers, self.state, self.keep_alive)

    def _default_registry(self) -> WorkerRegistry:
        prefixes = {q.keys.prefix for q in self.queues}
        if len(prefixes) > 1:
            raise ConfigError(
                f"the queues use several key prefixes ({', '.join(sorted(prefixes))}): "
                "pass registry=WorkerRegistry(...) to say where this worker reports",
                option="registry",
            )
        return self.queues[0].registry()

    def __repr__(self) -> str:
        return f"<Worker {self.id} queues={[q.name for q in self.queues]}>"

    @property
    def processed(self) -> int:
        """Messages processed so far."""
        return self.state.processed

    # --- control ------------------------------------------------------------------

    def stop(self) -> None:
        """End ``run()`` after the message in hand; safe from signal handlers."""
        self._stopping = True
        self._waker.wake()

    @property
    def is_stopping(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopping

    def run(self) -> int:
        """Work until stopped (signal, ``stop()``, ``max_messages`` or a shutdown request).

        On the main thread, SIGTERM and SIGINT call ``stop()`` and SIGHUP is ignored.

        Returns:
            The number of messages processed.
        """
        with installed_signal_handlers(stop_handlers(self.stop)):
            try:
                self._run()
            finally:
                self._waker.close()
        return self.processed

    # --- main loop ----------------------------------------------------------------

    def _run(self) -> None:
        interval = max(0.05, min(self.keep_alive / 3, 10.0))
        heartbeat = Heartbeat(
            self.registry,
            self.consumers,
            self.state,
            interval=interval,
            ttl_ms=int(max(interval * 3, 5.0) * 1000),
        )
        outage = idle = 0.0
        next_reclaim = next_shutdown_check = 0.0
        try:
            while not self._stopping:
                try:
                    if not self.state.started_ms:
                        self.state.started_ms = self.registry.time_ms()
                        heartbeat.start()
                    now = time.monotonic()
                    if now >= next_shutdown_check:
                        next_shutdown_check = now + _SHUTDOWN_CHECK
                        if self._shutdown_requested():
                            break
                    periodic = now >= next_reclaim
                    worked = self._round(periodic)
                    if periodic:
                        next_reclaim = now + self.keep_alive / 2
                    if outage:
                        logger.info("Redis is reachable again; worker %s resumes", self.id)
                        outage = 0.0
                except QueueError as exc:
                    outage = self._outage(outage, exc)
                    continue
                idle = 0.0 if worked else min(max(idle * 2, 0.01), _IDLE_MAX)
                if idle:
                    self._wait(idle)
        finally:
            self._shutdown(heartbeat)

    def _shutdown_requested(self) -> bool:
        if self.registry.shutdown_requested_at() > self.state.started_ms:
            logger.info("worker %s: shutdown requested in Redis", self.id)
            return True
        return False

    def _round(self, periodic: bool) -> bool:
        """Reclaim when due (every consumer every ``keep_alive / 2``; in between, those
        whose last reclaim was not done), then acknowledge what was finished and take
        the next batch (or use the one taken ahead) and work it."""
        worked = False
        if periodic or self._reclaim_again:
            worked = self._reclaim(None if periodic else self._reclaim_again)
        if self._stopping:
            return True
        found = self._rounds.next(self._batch_size())
        if found is not None:
            self._work(*found)
        return found is not None or worked

    def _outage(self, outage: float, exc: QueueError) -> float:
        """Log (a warning when the outage starts and at least every 10 s while it lasts,
        debug in between) and wait; returns the next wait."""
        now = time.monotonic()
        log = logger.debug
        if not outage or now - self._warned_at >= _OUTAGE_WARN_EVERY:
            log, self._warned_at = logger.warning, now
        outage = min(max(outage * 2, 0.5), _OUTAGE_MAX)
        log("worker %s: %s; retrying in %.1f s", self.id, exc, outage)
        self._wait(outage)
        return outage

    def _shutdown(self, heartbeat: Heartbeat) -> None:
        self._stopping = True
        try:
            self._rounds.finish()  # a batch it took stays in the state: released below
        except QueueError as exc:
            logger.warning("worker %s: %s; the leases it took will expire", self.id, exc)
        for index, consumer in enumerate(self.consumers):
            try:
                self._rounds.flush(index)
                consumer.release([*self.state.pop_unstarted(index), *self.state.pop_ahead(index)])
                consumer.leave()
            except QueueError as exc:
                logger.warning(
                    "worker %s: could not give back messages (%s); their leases "
                    "will expire and another worker will take them",
                    self.id,
                    exc,
                )
        heartbeat.stop()
        try:
            self.registry.forget(self.id)
        except QueueError as exc:
            logger.debug("worker %s: could not remove its registry entry: %s", self.id, exc)

    def _wait(self, seconds: float) -> None:
        if self._stopping:
            return
        ready, _, _ = select.select([self._waker], [], [], seconds)
        if ready:
            self._waker.drain()

    def _batch_size(self) -> int:
        return max(1, min(self.prefetch, int(_BATCH_TIME / max(self._avg, 1e-6))))

    def _reclaim(self, only: set[int] | None = None) -> bool:
        """Recover the expired leases of every consumer (or of those in ``only``); one
        whose reclaim is not done (``Reclaimed.more``) reclaims again in the next round:
        a dead worker's whole batch comes back in a few rounds, not one limit per
        ``keep_alive / 2``."""
        worked = False
        again: set[int] = set()
        for index, consumer in enumerate(self.consumers):
            if only is not None and index not in only:
                continue
            taken = consumer.reclaim(self.retry.max_attempts)
            if taken.more:
                again.add(index)
            if taken:
                worked = True
                self._work(index, taken)
        self._reclaim_again = again
        return worked or bool(again)

    def _look_ahead(self, size: int) -> None:
        """Send the next round trip while ``size`` messages are worked, when messages
        are quick (see ``_AHEAD_BELOW``): Redis works on it meanwhile."""
        if self.fork or self._stopping or self._avg > _AHEAD_BELOW or self._rounds.pending:
            return
        count = self._batch_size()
        if self.max_messages is not None:
            count = min(count, self.max_messages - self.state.processed - size)
        if count >= 1:
            self._rounds.send_ahead(count)

    def _work(self, index: int, batch: list[Taken]) -> None:
        consumer = self.consumers[index]
        self.state.add(index, batch)
        self._look_ahead(len(batch))
        started = last_flush = time.perf_counter()
        done = 0
        try:
            for taken in batch:
                if self._stopping:
                    break
                self.state.start(index, taken)
                self._process(index, consumer, taken)
                done += 1
                self.state.processed += 1
                if self.max_messages is not None and self.state.processed >= self.max_messages:
                    self.stop()
                now = time.perf_counter()
                if now - last_flush >= _ACK_EVERY:
                    self._rounds.flush(index)
                    last_flush = now
        finally:
            if done:
                self._avg = 0.5 * self._avg + 0.5 * (time.perf_counter() - started) / done
            self.state.drop(index)
            # Acknowledged by the next round trip (or at shutdown). On a Redis error the
            # unstarted ones are abandoned: their leases expire.
            consumer.release(self.state.pop_unstarted(index))

    # --- one message: decode, run, settle -------------------------------------------

    def _process(self, index: int, consumer: Consumer, taken: Taken) -> None:
        try:
            message = consumer.decode(taken)
        except DecodeError as exc:
            record, hook = undecodable(consumer.queue, taken, f"DecodeError: {exc}")
            self._fail(index, consumer, taken, record)
            self._hook(WORKER_FAILED, hook)
            return
        if self.bus.has_receivers(WORKER_BEFORE):
            self._hook(WORKER_BEFORE, before_info(message))
        memory = resident_memory() if consumer.keep_finished is not None else None
        started = time.perf_counter()
        outcome = self._run_receivers(message)
        duration = time.perf_counter() - started
        decided = settlement(outcome, message, self.retry)
        if decided.kind is Settle.ACK:
            self._finish(index, message, duration, memory)
            return
        if decided.kind is Settle.FAIL:
            self._fail(index, consumer, message, decided.record or b"{}")
        else:
            delay = decided.delay or 0.0
            self._retry(index, consumer, message, delay, count_attempt=decided.kind is Settle.RETRY)
        failed = decided.failed_info(outcome, duration)
        if failed is not None:
            self._hook(WORKER_FAILED, {**before_info(message), **failed})

    def _finish(self, index: int, message: Message, duration: float, memory: int | None) -> None:
        """Acknowledge in the next batch, with a finished record if ``memory`` (bytes
        before the receivers ran) was measured: the queue keeps them."""
        hooked = self.bus.has_receivers(WORKER_AFTER)
        after = resident_memory() if hooked or memory is not None else 0
        if memory is not None:
            self._rounds.records[id(message)] = encode_finished(
                message, self.id, duration, memory, after
            )
        self.state.finish(index, message)
        if hooked:
            info = {**before_info(message), "duration": duration, "memory": after}
            self._hook(WORKER_AFTER, info)

    def _run_receivers(self, message: Message) -> Outcome:
        bus, event, payload = self.bus, message.event, message.payload
        run = run_forked if self.fork else run_inline
        self.state.current = message
        context = _current.set(message)
        try:
            return run(lambda: bus.fire(event, payload))
        finally:
            _current.reset(context)
            self.state.current = None

    def _retry(
        self, index: int, consumer: Consumer, message: Message, delay: float, *, count_attempt: bool
    ) -> None:
        self.state.drop(index)
        if not consumer.retry(message, delay, count_attempt=count_attempt):
            logger.warning(
                "worker %s: lease of %s was lost; its retry is left to the new holder",
                self.id,
                message.id,
            )

    def _fail(self, index: int, consumer: Consumer, item: Message | Taken, record: bytes) -> None:
        self.state.drop(index)
        if not consumer.fail(item, record):
            logger.warning(
                "worker %s: lease of %s was lost; not storing it as failed", self.id, item.id
            )

    def _hook(self, event: str, payload: dict[str, Any]) -> None:
        if not self.bus.has_receivers(event):
            return
        try:
            self.bus.fire(event, payload)
        except Exception:
            logger.exception("worker %s: a %s receiver raised", self.id, event)
