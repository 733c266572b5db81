"""``Bridge``: a service that stores the events it receives in a Redis queue, in batches.

Everything a poll returns (up to ``batch`` messages) goes to Redis in one ``send_many``
round trip, and each confirmed message is confirmed only once that batch was accepted:
a confirmation from a bridge means "stored". With ``min_replicas``, "stored" means "on
the master and on that many replicas" (Redis ``WAIT``). A batch Redis refused, or too
few replicas acknowledged, confirms none of its events: their senders get the error (a
``RemoteError``), and the events that carried no confirmation are logged at ERROR, never
dropped silently.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import zmq

from zevents.errors import ConfigError, DecodeError, QueueError, QueueNotFound, ZeventsError
from zevents.eventbus import Bus, matcher
from zevents.events import INTERNAL_PREFIX, SERVICE_STOP
from zevents.eventsocket import EventSocket, Received
from zevents.redis.queue import RedisQueue
from zevents.redis.replication import Replication
from zevents.service import EventService

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_BATCH", "Bridge", "RedisWatch"]

#: Most events stored in one round trip.
DEFAULT_BATCH = 1000
#: Seconds between two looks at Redis (so an outage shows even with no event coming).
CHECK_EVERY = 2.5
#: Seconds between two warnings while Redis stays unavailable.
WARN_EVERY = 5.0
_NOBLOCK = zmq.NOBLOCK


def _text(error: Exception) -> str:
    """An error's message without its final full stop, to go on inside a sentence."""
    return str(error).rstrip(".")


class RedisWatch:
    """Says at WARNING, at most every ``WARN_EVERY`` seconds and while it lasts, that
    Redis cannot be reached, and at INFO when it is back.

    The bridge reports each batch's outcome; a thread of its own looks at Redis every
    ``CHECK_EVERY`` seconds, so an outage with no event coming is told too.

    Args:
        queue: The queue whose server is watched.
        confirmed: Whether senders are told of a failed store (for the warning's words).
    """

    def __init__(self, queue: RedisQueue, *, confirmed: bool) -> None:
        self.queue = queue
        self.meanwhile = (
            "confirmed senders get an error" if confirmed else "events received are dropped"
        )
        self.down_since: float | None = None
        self._warned_at = 0.0
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def failed(self, error: QueueError) -> None:
        """Redis did not take a command: warn, unless a warning went out just now."""
        now = time.monotonic()
        with self._lock:
            if self.down_since is None:
                self.down_since = self._warned_at = now
                logger.warning("%s; %s until it is back", _text(error), self.meanwhile)
            elif now - self._warned_at >= WARN_EVERY:
                self._warned_at = now
                logger.warning(
                    "Redis still unavailable after %.0f s (%s): %s",
                    now - self.down_since,
                    self.meanwhile,
                    _text(error),
                )

    def succeeded(self) -> None:
        """Redis took a command: say so once if it had been unavailable."""
        with self._lock:
            if self.down_since is None:
                return
            down_for, self.down_since = time.monotonic() - self.down_since, None
        logger.info("Redis is available again, after %.1f s", down_for)

    def check(self) -> None:
        """Ask Redis something that writes nothing, and note the outcome."""
        try:
            self.queue.stats()
        except QueueNotFound:
            self.succeeded()  # Redis answered (a new queue, or a server that lost its data)
        except QueueError as exc:
            self.failed(exc)
        else:
            self.succeeded()

    @contextlib.contextmanager
    def watching(self) -> Iterator[RedisWatch]:
        """Check Redis every ``CHECK_EVERY`` seconds in a thread while the block runs."""
        thread = threading.Thread(target=self._run, name="zevents-bridge-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stopped.set()
            # A check in flight is bounded by the client's socket timeout; not waited out.
            thread.join(0.5)

    def _run(self) -> None:
        while not self._stopped.wait(CHECK_EVERY):
            try:
                self.check()
            except Exception:
                logger.exception("checking Redis failed")


Answer = tuple[Received | DecodeError, Exception | None]


class Bridge(EventService):
    """Receives events on ZeroMQ sockets (``listen`` them as for a service) and puts the
    ones matching ``pattern`` into ``queue``.

    zevents' own events (``zevents.*``) are never stored; a ``zevents.service.stop``
    received stops the bridge, as it stops a service. Events do not go through a bus:
    receivers of the bridge's bus see only its own events (idle, errors).

    Args:
        queue: Where events go.
        bus: The bridge's bus (for ``zevents.service.*``); a new one by default.
        pattern: Only events matching it are stored (``*``: all).
        priority: The priority of the stored messages (default: the queue's).
        delay: Seconds before the stored messages are due.
        batch: Most events stored in one round trip.
        min_replicas: Replicas that must have a batch before its events are confirmed
            (None: the queue's ``min_replicas``).
        poll_timeout: As for ``EventService``.
        drain_timeout: As for ``EventService``.

    Raises:
        ConfigError: A priority or delay the queue cannot take (checked now, before
            anything is received), a bad batch size or ``min_replicas``.
        QueueUnavailable: Redis cannot be reached (asked now, so a bridge that was built
            is one whose Redis answered; an outage after that is logged and waited out).
    """

    def __init__(
        self,
        queue: RedisQueue,
        bus: Bus | None = None,
        *,
        pattern: str = "*",
        priority: int | None = None,
        delay: float = 0.0,
        batch: int = DEFAULT_BATCH,
        min_replicas: int | None = None,
        **service: Any,
    ) -> None:
        super().__init__(bus if bus is not None else Bus("bridge"), **service)
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"batch must be a whole number >= 1, not {batch!r}", option="batch")
        queue.registry().time_ms()  # a round trip: an unreachable Redis fails here
        queue.check_send(priority=priority, delay=delay)
        if min_replicas is not None:
            Replication(min_replicas, queue.replication.timeout)  # checks it
        self.min_replicas = min_replicas
        self.queue = queue
        self.pattern = pattern
        self.batch = batch
        self._matches = matcher(pattern)
        self.priority = priority
        self.delay = delay
        #: Events stored so far.
        self.stored = 0
        #: Events that could not be stored (their senders were told, or they were logged).
        self.refused = 0
        #: Of those, the ones received without confirmation: dropped, each logged.
        self.dropped = 0
        self.watch: RedisWatch | None = None

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<Bridge {state} into {self.queue.name!r} listeners={len(self.listeners)}>"

    def run(self) -> None:
        """Receive and store until stopped (as ``EventService.run``). Redis going away
        meanwhile stops nothing: ``RedisWatch`` logs it, and what could not be stored is
        refused to its confirmed senders or logged as dropped.

        Raises:
            EndpointError, ServiceError: As for ``EventService.run``.
        """
        confirmed = any(listener.options.confirmed for listener in self.listeners)
        self.watch = RedisWatch(self.queue, confirmed=confirmed)
        with self.watch.watching():
            super().run()
        logger.info(
            "bridge stopped after enqueueing %d event(s) into %r; dropped %d",
            self.stored,
            self.queue.name,
            self.dropped,
        )

    def handle_ready(self, sock: EventSocket) -> int:
        """Store what ``sock`` holds (up to ``batch`` messages) in one round trip, then
        confirm each message accordingly."""
        messages = self._take(sock)
        if not messages:
            return 0
        answers: list[Answer] = []
        keep: list[Received] = []
        for message in messages:
            if isinstance(message, DecodeError):
                self._report(message.event, message, frames=message.frames)
                answers.append((message, message))
            elif message.event.startswith(INTERNAL_PREFIX):
                if message.event == SERVICE_STOP:
                    self.stop()
                answers.append((message, None))
            elif self._matches(message.event):
                keep.append(message)
            else:
                answers.append((message, None))
        if keep:
            answers += self._store(keep)
        self._confirm(sock, [a for a in answers if _answers(a, sock)])
        return len(messages)

    def _take(self, sock: EventSocket) -> list[Received | DecodeError]:
        taken: list[Received | DecodeError] = []
        receive = sock.receive
        while len(taken) < self.batch:
            try:
                taken.append(receive(_NOBLOCK))
            except zmq.Again:
                break
            except DecodeError as exc:
                taken.append(exc)
        return taken

    def _store(self, messages: list[Received]) -> list[Answer]:
        """``send_many`` the batch; every message's answer (None: stored)."""
        options = {"priority": self.priority, "delay": self.delay}
        entries = [{"event": m.event, "payload": m.payload, **options} for m in messages]
        try:
            self.queue.send_many(entries, min_replicas=self.min_replicas)
        except QueueError as exc:
            self._refused(messages, exc)
            return [(m, exc) for m in messages]
        except ZeventsError:
            # One message the queue cannot take (its payload, say): store the rest alone.
            return [answer for m in messages for answer in self._store_one(m)]
        self.stored += len(messages)
        if self.watch is not None:
            self.watch.succeeded()
        return [(m, None) for m in messages]

    def _store_one(self, message: Received) -> list[Answer]:
        try:
            self.queue.send(
                message.event,
                message.payload,
                priority=self.priority,
                delay=self.delay,
                min_replicas=self.min_replicas,
            )
        except ZeventsError as exc:
            self._refused([message], exc)
            return [(message, exc)]
        self.stored += 1
        return [(message, None)]

    def _refused(self, messages: list[Received], error: ZeventsError) -> None:
        """Note what could not be stored: the outage (``RedisWatch``), and an ERROR
        naming the events that had no confirmation to carry the news."""
        self.refused += len(messages)
        if isinstance(error, QueueError) and self.watch is not None:
            self.watch.failed(error)
        silent = [m for m in messages if m.token is None]
        if not silent:
            return
        self.dropped += len(silent)
        if len(silent) == 1:
            logger.error(
                "dropped %r, received without confirmation: %s", silent[0].event, _text(error)
            )
            return
        names = ", ".join(repr(m.event) for m in silent[:5])
        more = f" and {len(silent) - 5} more" if len(silent) > 5 else ""
        logger.error(
            "dropped %d events received without confirmation (%s%s): %s",
            len(silent),
            names,
            more,
            _text(error),
        )


def _answers(answer: Answer, sock: EventSocket) -> bool:
    """Whether ``answer`` is sent: to every message that carries a token (with the error,
    if any); to a tokenless one only in zeroevents' form and only when it was stored,
    since zeroevents' confirmation cannot carry an error."""
    message, error = answer
    return message.token is not None or (sock.zeroevents and error is None)
