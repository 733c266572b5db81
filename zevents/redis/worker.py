"""``Worker``: takes messages from Redis queues and fires them on a bus."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import redis

from zevents._signals import Waker, installed_signal_handlers, stop_handlers
from zevents.config import check_seconds
from zevents.errors import ConfigError, DecodeError, QueueError, QueueUnavailable
from zevents.events import WORKER_AFTER, WORKER_BEFORE, WORKER_FAILED
from zevents.redis import heartbeat
from zevents.redis._client import mask_url
from zevents.redis._current import _current
from zevents.redis._outcome import Outcome, run_forked, run_inline
from zevents.redis.defaults import DEFAULT_KEEP_ALIVE, DEFAULT_PREFETCH
from zevents.redis.message import Message, Taken, decode_body
from zevents.redis.queue import RedisQueue
from zevents.redis.retry import RetryPolicy, select_priorities
from zevents.redis.worker_state import InHand, beat_loop, failure_record, resident_memory

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

    Raises:
        ConfigError: A bad option (``option`` names it).
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
    ) -> None:
        self.queues = [queues] if isinstance(queues, RedisQueue) else list(queues)
        if not self.queues:
            raise ConfigError("a worker needs at least one queue", option="queues")
        check_seconds(keep_alive, "keep_alive", option="keep_alive")
        if max_messages is not None and (isinstance(max_messages, bool) or max_messages < 1):
            raise ConfigError("max_messages must be at least 1", option="max_messages")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
            raise ConfigError("prefetch must be a whole number >= 1", option="prefetch")
        if bus is None:
            from zevents import default_bus

            bus = default_bus
        self.bus: Bus = bus
        self.retry = retry or RetryPolicy()
        self.keep_alive = keep_alive
        self.lease_ms = int(keep_alive * 1000)
        self.max_messages = max_messages
        self.fork = fork
        self.prefetch = prefetch
        spec = serve if serve is None or isinstance(serve, str) else list(serve)
        self.served = [select_priorities(q.priorities, spec) for q in self.queues]
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.processed = 0
        self._stopping = False
        self._waker = Waker()
        self._hand = InHand(len(self.queues))
        self._avg = _BATCH_TIME
        self._started_ms = 0

    def __repr__(self) -> str:
        return f"<Worker {self.id} queues={[q.name for q in self.queues]}>"

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
        beater = threading.Thread(
            target=beat_loop, args=(self,), name=f"zevents-beat-{self.id}", daemon=True
        )
        outage = 0.0
        idle = 0.0
        next_reclaim = next_shutdown_check = 0.0
        try:
            while not self._stopping:
                try:
                    if not self._started_ms:
                        self._started_ms = heartbeat.redis_time_ms(self.queues[0].client)
                        beater.start()
                    now = time.monotonic()
                    if now >= next_shutdown_check:
                        next_shutdown_check = now + _SHUTDOWN_CHECK
                        first = self.queues[0]
                        asked = heartbeat.shutdown_requested_at(first.client, first.keys.prefix)
                        if asked > self._started_ms:
                            logger.info("worker %s: shutdown requested in Redis", self.id)
                            break
                    for index in range(len(self.queues)):
                        self._flush(index)  # acknowledgements left over from an outage
                    worked = False
                    if now >= next_reclaim:
                        next_reclaim = now + self.keep_alive / 2
                        worked = self._reclaim()
                    worked = self._take_and_work() or worked
                    if outage:
                        logger.info("Redis is reachable again; worker %s resumes", self.id)
                        outage = 0.0
                except (redis.RedisError, QueueError) as exc:
                    # One warning per outage; the retries after it log at debug level.
                    log = logger.debug if outage else logger.warning
                    outage = min(max(outage * 2, 0.5), _OUTAGE_MAX)
                    gone = isinstance(exc, (redis.ConnectionError, redis.TimeoutError))
                    log(
                        "worker %s: Redis at %s %s (%s); retrying in %.1f s",
                        self.id,
                        mask_url(self.queues[0].url),
                        "unavailable" if gone or isinstance(exc, QueueUnavailable) else "failed",
                        exc,
                        outage,
                    )
                    self._wait(outage)
                    continue
                if worked:
                    idle = 0.0
                else:
                    idle = min(max(idle * 2, 0.01), _IDLE_MAX)
                    self._wait(idle)
        finally:
            self._shutdown(beater)

    def _shutdown(self, beater: threading.Thread) -> None:
        self._stopping = True
        for index, queue in enumerate(self.queues):
            try:
                self._flush(index)
                unstarted = self._hand.pop_unstarted(index)
                if unstarted:
                    queue.driver.release(unstarted, self.lease_ms)
                queue.driver.leave()
            except redis.RedisError as exc:
                logger.warning(
                    "worker %s: could not give back messages (%s); their leases "
                    "will expire and another worker will take them",
                    self.id,
                    exc,
                )
        if beater.is_alive():
            beater.join(timeout=5)
        with contextlib.suppress(redis.RedisError):
            heartbeat.forget(self.queues[0].client, self.id, self.queues[0].keys.prefix)

    def _wait(self, seconds: float) -> None:
        if self._stopping:
            return
        ready, _, _ = select.select([self._waker], [], [], seconds)
        if ready:
            self._waker.drain()

    def _batch_size(self) -> int:
        return max(1, min(self.prefetch, int(_BATCH_TIME / max(self._avg, 1e-6))))

    def _reclaim(self) -> bool:
        worked = False
        for index, queue in enumerate(self.queues):
            taken = queue.driver.reclaim(
                self.lease_ms, self.retry.max_attempts, queue.max_reclaims, self.served[index]
            )
            if taken:
                worked = True
                self._work(index, taken)
        return worked

    def _take_and_work(self) -> bool:
        for index, queue in enumerate(self.queues):
            if self._stopping:
                return True
            taken = queue.driver.take(self._batch_size(), self.lease_ms, self.served[index])
            if taken:
                self._work(index, taken)
                return True
        return False

    def _work(self, index: int, batch: list[Taken]) -> None:
        queue = self.queues[index]
        self._hand.add(index, batch)
        started = time.perf_counter()
        last_flush = started
        done = 0
        try:
            for taken in batch:
                if self._stopping:
                    break
                self._hand.start(index, taken)
                self._process(index, queue, taken)
                done += 1
                self.processed += 1
                if self.max_messages is not None and self.processed >= self.max_messages:
                    self.stop()
                now = time.perf_counter()
                if now - last_flush >= _ACK_EVERY:
                    self._flush(index)
                    last_flush = now
        finally:
            if done:
                self._avg = 0.5 * self._avg + 0.5 * (time.perf_counter() - started) / done
            self._hand.drop(index)
            unstarted = self._hand.pop_unstarted(index)
            # On a Redis error the unstarted ones are abandoned: their leases expire.
            self._flush(index)
            if unstarted:
                queue.driver.release(unstarted, self.lease_ms)

    def _flush(self, index: int) -> None:
        acks = self._hand.acks(index)
        if not acks:
            return
        lost = self.queues[index].driver.ack(acks)
        self._hand.acked(index, acks)
        if lost:
            logger.warning(
                "worker %s: lease lost on %d message(s) before acknowledgement "
                "(another worker took them over): %s",
                self.id,
                len(lost),
                lost[:5],
            )

    # --- one message --------------------------------------------------------------

    def _process(self, index: int, queue: RedisQueue, taken: Taken) -> None:
        try:
            fields = decode_body(taken.body)
        except DecodeError as exc:
            record = failure_record(f"DecodeError: {exc}", None, taken.attempt, "undecodable")
            self._settle_fail(index, queue, taken, record, None, None)
            self._hook(
                WORKER_FAILED,
                {
                    "queue": queue.name,
                    "id": taken.id,
                    "event": None,
                    "attempt": taken.attempt,
                    "error": f"DecodeError: {exc}",
                    "receiver": None,
                    "final": True,
                },
            )
            return
        enqueued = fields.get("enqueued_at")
        message = Message(
            taken.id,
            fields["event"],
            fields.get("payload"),
            taken.attempt,
            taken.priority,
            enqueued / 1000.0 if isinstance(enqueued, (int, float)) else None,
            fields.get("identifier"),
            fields.get("serial_group"),
            queue,
            taken,
            self.lease_ms,
        )
        self._hand.current = message
        info = {
            "queue": queue.name,
            "id": message.id,
            "event": message.event,
            "attempt": message.attempt,
            "priority": message.priority,
        }
        self._hook(WORKER_BEFORE, info)
        context = _current.set(message)
        started = time.perf_counter()
        try:
            outcome = self._fire(message)
        finally:
            _current.reset(context)
            self._hand.current = None
        duration = time.perf_counter() - started
        kind = outcome["kind"]
        if kind == "ok":
            self._hand.finish(index, taken)
            if self.bus.has_receivers(WORKER_AFTER):
                self._hook(
                    WORKER_AFTER, {**info, "duration": duration, "memory": resident_memory()}
                )
            return
        error, receiver = str(outcome.get("error")), outcome.get("receiver")
        retry_in: float | None = None
        if kind == "waiting":
            delay = outcome.get("delay")
            retry_in = float(delay) if delay is not None else self.retry.delay(message.attempt)
            self._settle_retry(index, queue, taken, retry_in, count_attempt=False)
        elif kind == "permanent" or self.retry.is_exhausted(message.attempt):
            reason = "permanent" if kind == "permanent" else "attempts"
            record = failure_record(error, receiver, message.attempt, reason, message)
            self._settle_fail(index, queue, taken, record, message.identifier, message.serial_group)
        else:
            retry_in = self.retry.delay(message.attempt)
            self._settle_retry(index, queue, taken, retry_in, count_attempt=True)
        if kind != "waiting":
            self._hook(
                WORKER_FAILED,
                {
                    **info,
                    "error": error,
                    "receiver": receiver,
                    "duration": duration,
                    "retry_in": retry_in,
                    "final": retry_in is None,
                },
            )

    def _fire(self, message: Message) -> Outcome:
        bus, event, payload = self.bus, message.event, message.payload
        run = run_forked if self.fork else run_inline
        return run(lambda: bus.fire(event, payload))

    def _settle_retry(
        self, index: int, queue: RedisQueue, taken: Taken, delay: float, *, count_attempt: bool
    ) -> None:
        self._hand.drop(index)
        if not queue.driver.retry(taken, int(delay * 1000), count_attempt=count_attempt):
            logger.warning(
                "worker %s: lease of %s was lost; its retry is left to the new holder",
                self.id,
                taken.id,
            )

    def _settle_fail(
        self,
        index: int,
        queue: RedisQueue,
        taken: Taken,
        record: bytes,
        identifier: str | None,
        serial: str | None,
    ) -> None:
        self._hand.drop(index)
        if not queue.driver.fail(taken, record, identifier, serial):
            logger.warning(
                "worker %s: lease of %s was lost; not storing it as failed", self.id, taken.id
            )

    def _hook(self, event: str, payload: dict[str, Any]) -> None:
        if not self.bus.has_receivers(event):
            return
        try:
            self.bus.fire(event, payload)
        except Exception:
            logger.exception("worker %s: a %s receiver raised", self.id, event)
