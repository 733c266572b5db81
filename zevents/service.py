"""``EventService``: receives events on ZeroMQ sockets and fires them on a bus."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

import zmq

from zevents._signals import (
    DEFAULT_IGNORED_SIGNALS,
    DEFAULT_STOP_SIGNALS,
    SignalHandler,
    Waker,
    installed_signal_handlers,
    stop_handlers,
)
from zevents.config import DEFAULT_DRAIN_TIMEOUT, DEFAULT_POLL_TIMEOUT, check_seconds
from zevents.errors import DecodeError, ServiceError
from zevents.eventbus import Bus, default_bus
from zevents.events import SERVICE_ERROR, SERVICE_IDLE, SERVICE_STOP
from zevents.eventsocket import Answer, EventSocket, EventSocketBase, Received
from zevents.receiving import ReceivingSocket, ReceivingSocketBase, receiving_socket

logger = logging.getLogger(__name__)

__all__ = ["Answer", "Answers", "EventService", "ServiceBase", "log_unsent"]

R = TypeVar("R", bound=ReceivingSocketBase[Any])
_S = TypeVar("_S", bound="ServiceBase[Any]")

# Over ipc, libzmq can drop a message sent just before its socket closes (libzmq issues
# 4660 and 3774); it was not seen once the socket had a moment after the send. A service
# that confirmed a message this recently waits out the rest of this before closing.
_CONFIRM_SETTLE = 0.1

# Messages taken from one readable socket before the stop flag and the other sockets
# get a look: large enough to amortise the poll, small enough to stay fair.
_BATCH = 256
# Longest a confirmation waits for the rest of its batch (seconds).
_CONFIRM_BATCH = 0.002
_NOBLOCK = zmq.NOBLOCK


def log_unsent(event: str, count: int, exc: zmq.ZMQError) -> None:
    """Log a confirmation message that could not be sent (``count`` events, the first
    ``event``): their senders will time out and treat them as unknown."""
    if count == 1:
        logger.warning("could not confirm %r to its sender: %s", event, exc)
    else:
        logger.warning(
            "could not confirm %r and %d more to their sender: %s", event, count - 1, exc
        )


class Answers:
    """The confirmations of one batch of messages, each with the error its handling met
    (or None), to send together: after the batch, or once the first has waited
    ``_CONFIRM_BATCH`` seconds. Consecutive sends let libzmq write many in one go, where
    a confirmation sent after each event costs a wake-up of its I/O thread."""

    __slots__ = ("pending", "since")

    def __init__(self) -> None:
        self.pending: list[Answer] = []
        self.since = 0.0

    def add(self, received: Received | DecodeError, error: Exception | None) -> bool:
        """Keep one; whether the confirmations kept are due now."""
        pending = self.pending
        pending.append((received, error))
        if len(pending) == 1:
            self.since = time.monotonic()
            return False
        return time.monotonic() - self.since >= _CONFIRM_BATCH

    def take(self) -> list[Answer]:
        """The confirmations kept, now forgotten."""
        pending, self.pending = self.pending, []
        return pending


class ServiceBase(Generic[R]):
    """What the sync and asyncio services share: options, listeners, signals, stop, and
    the reports of failed messages; the subclasses receive (see ``EventService``)."""

    def __init__(
        self,
        bus: Bus | None = None,
        *,
        poll_timeout: float = DEFAULT_POLL_TIMEOUT,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    ):
        self.bus = bus if bus is not None else default_bus
        self.poll_timeout = check_seconds(poll_timeout, "poll_timeout")
        self.drain_timeout = check_seconds(drain_timeout, "drain_timeout", minimum=0.0)
        # One bound method, so that forget() removes exactly what listen() added.
        self._stop_receiver = self._on_stop_event
        #: The sockets the service receives on, in the order they were added.
        self.listeners: list[R] = []
        self._stop_requested = threading.Event()
        # Mirrors _stop_requested for the per-message check: reading a flag costs less
        # than calling Event.is_set.
        self._stopping = False
        self._running = threading.Event()
        self._signals: tuple[int, ...] = DEFAULT_STOP_SIGNALS
        self._ignored: tuple[int, ...] = DEFAULT_IGNORED_SIGNALS
        self._custom_handler: SignalHandler | None = None
        self._last_confirm = 0.0

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<{type(self).__name__} {state} listeners={len(self.listeners)}>"

    @property
    def is_running(self) -> bool:
        """Whether ``run()`` is in its loop."""
        return self._running.is_set()

    def _receiving(self, spec: Any) -> R:
        """The receiving socket made from what ``listen`` was given."""
        raise NotImplementedError

    def listen(self: _S, listener: Any) -> _S:
        """Receive events on a socket made from ``listener``'s options.

        Args:
            listener: An ``EventListener`` (its options; with no ``socket_type`` the
                service receives on PULL, or ROUTER/DEALER when confirmed), a
                ``ReceivingSocket``, a mapping of options, or a config connection name.

        Returns:
            The service, so calls chain.

        Raises:
            ConfigError: Invalid options or an unknown connection.
        """
        self.listeners.append(self._receiving(listener))
        return self

    def listen_to_signals(
        self: _S,
        signals: Iterable[int] = DEFAULT_STOP_SIGNALS,
        handler: SignalHandler | None = None,
        *,
        ignore: Iterable[int] = DEFAULT_IGNORED_SIGNALS,
    ) -> _S:
        """Choose the signals ``run()`` handles.

        Args:
            signals: Signals that stop the service gracefully.
            handler: A handler ``(signum, frame)`` to install for every listed signal
                instead of the default (which calls ``stop()``).
            ignore: Signals to ignore while running.

        Returns:
            The service.
        """
        self._signals = tuple(signals)
        self._ignored = tuple(ignore)
        self._custom_handler = handler
        return self

    def stop(self) -> None:
        """Stop ``run()`` after the event in hand; safe from receivers, threads and
        signal handlers. Called before ``run()``, it makes ``run()`` return at once."""
        self._stopping = True
        self._stop_requested.set()
        self._wake()

    def _wake(self) -> None:
        """End the wait of a running ``run()`` at once."""
        raise NotImplementedError

    def _on_stop_event(self, _event: str, _payload: Any) -> None:
        self.stop()

    def _signal_handlers(self) -> dict[int, SignalHandler | int]:
        """What ``run()`` installs: signal number to handler."""
        return stop_handlers(self.stop, self._signals, self._ignored, self._custom_handler)

    def _begin(self) -> None:
        """Check that ``run()`` may start.

        Raises:
            ServiceError: The service has no listener, or is already running.
        """
        if not self.listeners:
            raise ServiceError("the service has no listener: call listen() first")
        if self._running.is_set():
            raise ServiceError("the service is already running")

    def _end(self) -> float:
        """Leave the running state; seconds to wait before closing the sockets, so that
        the last confirmations go out (see ``_CONFIRM_SETTLE``)."""
        self._running.clear()
        self._stop_requested.clear()
        self._stopping = False
        self.bus.forget(SERVICE_STOP, self._stop_receiver)
        return max(0.0, _CONFIRM_SETTLE - (time.monotonic() - self._last_confirm))

    def _close_listeners(self) -> None:
        for listener in self.listeners:
            listener.close()
        logger.info("service stopped")

    def _start_drain(self) -> float:
        """Begin handling what the sockets already hold (``stop()`` again ends it); when
        that ends at the latest."""
        self._stopping = False
        return time.monotonic() + self.drain_timeout

    def _is_draining(self, deadline: float, pending: bool) -> bool:
        """Whether a drain goes on: the last round handled messages, time is left, and
        no second ``stop()`` came."""
        return pending and time.monotonic() < deadline and not self._stopping

    def _ready(self, sock: EventSocketBase) -> Iterator[Received | DecodeError]:
        """The messages ready on ``sock`` (without waiting), up to ``_BATCH``, until a
        stop: each as received, or as the ``DecodeError`` its frames raised."""
        receive = sock.receive
        for _ in range(_BATCH):
            if self._stopping:
                return
            try:
                received: Received | DecodeError = receive(_NOBLOCK)
            except zmq.Again:
                return
            except DecodeError as exc:
                received = exc
            yield received

    def _error_report(
        self, event: str | None, error: Exception, frames: list[bytes] | None
    ) -> dict[str, Any] | None:
        """Log a failed message (malformed, or its receivers raised); the payload of the
        ``zevents.service.error`` to fire for it (None for a failed error receiver: an
        error handler that fails must not loop)."""
        text = f"{type(error).__name__}: {error}"
        if frames is not None:
            logger.error("dropped a malformed message (%d frames): %s", len(frames), text)
        else:
            logger.error("receivers of %r failed: %s", event, text, exc_info=error)
        if event == SERVICE_ERROR:
            return None
        payload: dict[str, Any] = {
            "event": event,
            "error": text,
            "error_type": type(error).__name__,
        }
        if frames is not None:
            payload["frames"] = [bytes(f)[:256].hex() for f in frames[:8]]
        return payload


class EventService(ServiceBase[ReceivingSocket]):
    """Polls the sockets of its listeners and fires each incoming event on ``bus``.

    Args:
        bus: The bus to fire on; the default bus when ``None``.
        poll_timeout: Seconds without an event before ``zevents.service.idle`` fires
            (at least 0.001).
        drain_timeout: Seconds a stopping service keeps handling the events its
            sockets had already received, before it closes them (0: none).

    Raises:
        ConfigError: A timeout that is not a finite number of seconds.
    """

    #: The self-pipe of a running ``run()``, which ``stop()`` writes to.
    _waker: Waker | None = None

    def _receiving(self, spec: Any) -> ReceivingSocket:
        return receiving_socket(spec)

    def _wake(self) -> None:
        waker = self._waker
        if waker is not None:
            waker.wake()

    def run(self) -> None:
        """Receive and fire events until stopped.

        Stops on ``stop()`` (also when called before ``run()``), on
        ``zevents.service.stop`` fired on the bus, and (on the main thread) on SIGTERM
        or SIGINT; SIGHUP is ignored. The event in hand finishes; events the sockets
        had already received are handled for up to ``drain_timeout`` seconds; then the
        sockets close and ``run()`` returns.

        Raises:
            EndpointError: A socket cannot bind or connect.
            ServiceError: The service has no listener, or is already running.
        """
        self._begin()
        handlers = self._signal_handlers()
        waker = self._waker = Waker()
        timeout_ms = max(1, round(self.poll_timeout * 1000))
        try:
            # Handlers first: a signal while the sockets open still stops gracefully.
            with installed_signal_handlers(handlers):
                sockets = [listener.socket for listener in self.listeners]
                poller = zmq.Poller()
                for sock in sockets:
                    poller.register(sock, zmq.POLLIN)
                poller.register(waker.fileno(), zmq.POLLIN)
                self.bus.listen(SERVICE_STOP, self._stop_receiver)
                self._running.set()
                logger.info("service receiving on %s", ", ".join(map(repr, self.listeners)))
                idle_since = time.monotonic()
                while not self._stop_requested.is_set():
                    ready = dict(poller.poll(timeout_ms))
                    if not ready:
                        self._fire_idle(time.monotonic() - idle_since)
                        continue
                    if waker.fileno() in ready:
                        waker.drain()
                    for sock in sockets:
                        if sock in ready and self.handle_ready(sock):
                            idle_since = time.monotonic()
                self._drain_received(sockets)
        finally:
            settle = self._end()
            self._waker = None
            waker.close()
            if settle > 0:
                time.sleep(settle)
            self._close_listeners()

    def _drain_received(self, sockets: list[EventSocket]) -> None:
        """Handle what the sockets already hold, for up to ``drain_timeout`` seconds.

        Closing a socket drops the messages queued in it, which their senders believe
        delivered. A second ``stop()`` ends this early.
        """
        deadline = self._start_drain()
        pending = True
        while self._is_draining(deadline, pending):
            # A list, not a generator: every socket gets its turn.
            pending = any([self.handle_ready(sock) for sock in sockets])

    def _fire_idle(self, idle_for: float) -> None:
        try:
            self.bus.fire(SERVICE_IDLE, {"idle_for": round(idle_for, 3)})
        except Exception as exc:
            self._report(SERVICE_IDLE, exc)

    def handle_ready(self, sock: EventSocket) -> int:
        """Handle up to ``_BATCH`` messages ready on ``sock`` (without waiting); return
        how many. A subclass that handles messages otherwise overrides this (the Redis
        bridge stores them in batches); it must confirm what carries a token.

        Confirmations are sent together (see ``Answers``).
        """
        handled = 0
        fire = self.bus.fire
        answers = Answers()
        # zeroevents' form confirms messages that carry no token too.
        untokened = sock.zeroevents
        error: Exception | None
        for received in self._ready(sock):
            handled += 1
            if isinstance(received, DecodeError):
                self._report(received.event, received, frames=received.frames)
                error = received
            else:
                try:
                    fire(received[0], received[1])
                    error = None
                except Exception as exc:
                    self._report(received.event, exc)
                    error = exc
            if (received.token is not None or untokened) and answers.add(received, error):
                self._confirm(sock, answers.take())
        if answers.pending:
            self._confirm(sock, answers.take())
        return handled

    def _confirm(self, sock: EventSocket, confirms: list[Answer]) -> None:
        """Send the confirmations of ``confirms`` (each message with the error its
        handling met, or None), together: one message per sender for those that went
        well (see ``EventSocket.confirmations_of``)."""
        send = sock.send_frames
        for frames, event, count in sock.confirmations_of(confirms):
            try:
                send(frames)
            except zmq.ZMQError as exc:
                log_unsent(event, count, exc)
        self._last_confirm = time.monotonic()

    def _report(
        self, event: str | None, error: Exception, frames: list[bytes] | None = None
    ) -> None:
        """Log a failed message (malformed, or its receivers raised) and fire
        ``zevents.service.error`` for it."""
        payload = self._error_report(event, error, frames)
        if payload is None:
            return
        try:
            self.bus.fire(SERVICE_ERROR, payload)
        except Exception:
            logger.exception("a receiver of %s failed", SERVICE_ERROR)
