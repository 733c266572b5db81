"""``EventListener``: sends events to a ZeroMQ socket; as a bus receiver, forwards them.

``ListenerBase`` holds what the sync listener and ``zevents.aio.EventListener`` share:
options, the window of confirmations in flight, how a failed send is told, and the
``zevents.push.error`` report; only the subclasses wait on sockets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import zmq

from zevents._opening import S
from zevents._sockets import LazySocket, SocketOwner
from zevents.config import ListenerOptions, load_connection
from zevents.confirmations import ConfirmWindow, InFlight, unconfirmed_error, wait_ms
from zevents.errors import DeliveryError, DeliveryTimeout, RemoteError
from zevents.eventbus import Bus, current_bus, default_bus
from zevents.events import PUSH_ERROR
from zevents.eventsocket import EventSocket
from zevents.serializers import resolve_serializer

logger = logging.getLogger(__name__)

__all__ = ["EventListener", "ListenerBase", "options_of"]


def options_of(
    options: Mapping[str, Any] | str | None, overrides: Mapping[str, Any]
) -> ListenerOptions:
    """Validated options from a mapping or a config connection name, keywords winning.

    Raises:
        ConfigError: Unknown or invalid options, or an unknown connection name.
    """
    if isinstance(options, str):
        options = load_connection(options)
    return ListenerOptions.build(options, **overrides)


class ListenerBase(SocketOwner[S]):
    """What the sync and asyncio listeners share (see ``EventListener`` for the
    arguments); subclasses set ``socket_class``."""

    socket_class: type[S]

    def __init__(
        self,
        options: Mapping[str, Any] | str | None = None,
        /,
        *,
        bus: Bus | None = None,
        **overrides: Any,
    ) -> None:
        self.options = options_of(options, overrides)
        self.serializer = resolve_serializer(self.options.serializer)
        self.bus = bus
        self._socket = LazySocket(self.options, self.serializer, "send", self.socket_class)
        opts = self.options
        #: Confirmed with a window of several events: those in flight, and those that
        #: failed since the last flush.
        self._window: ConfirmWindow | None = None
        if opts.confirmed and opts.window > 1:
            timeout = None if opts.rcvtimeo < 0 else opts.rcvtimeo / 1000
            self._window = ConfirmWindow(opts.window, timeout, opts.endpoints)
        self._unconfirmed: list[InFlight] = []
        self._init_sending()

    def _init_sending(self) -> None:
        """Set up what the subclass's sends need (their lock)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} sending {self.socket_type} {self.options.endpoints}>"

    @property
    def in_flight(self) -> int:
        """How many events were sent and are not confirmed yet (windowed listeners)."""
        return len(self._window) if self._window is not None else 0

    def _failure(self, exc: BaseException, event: str, half_sent: bool) -> BaseException:
        """What a send that raised ``exc`` raises; drops the socket when its state is
        unusable (``half_sent``: an interruption may have left half a message queued).
        """
        endpoint = self.options.endpoints
        if isinstance(exc, zmq.Again):
            timeout = DeliveryTimeout(
                f"no peer took the event within sndtimeo={self.options.sndtimeo} ms",
                event=event,
                endpoint=endpoint,
            )
            timeout.__suppress_context__ = True
            return timeout
        if isinstance(exc, DeliveryError):
            # No usable answer on this socket: a new one starts clean.
            self._socket.reset()
            exc.endpoint = exc.endpoint or endpoint
            return exc
        if isinstance(exc, zmq.ZMQError):
            self._socket.reset()
            error = DeliveryError(str(exc), event=event, endpoint=endpoint)
            error.__cause__ = exc
            return error
        if not isinstance(exc, Exception) and half_sent:
            # A new socket keeps half a message from being glued to the next event.
            self._socket.reset()
        return exc  # EncodeError, EndpointError: nothing half-sent

    def _settled(
        self, window: ConfirmWindow, confirmations: list[tuple[bytes, bytes]]
    ) -> list[InFlight]:
        """Settle ``confirmations`` (tokens, status) and what is past its time; the events
        found failed, also kept for ``flush``."""
        failed = []
        for tokens, status in confirmations:
            failed += window.settle(tokens, status)
        failed += window.expire(time.monotonic())
        self._unconfirmed += failed
        return failed

    def _flush_wait(
        self,
        window: ConfirmWindow,
        stop: float | None,
        timeout: float | None,
        failed: list[InFlight],
    ) -> int | None:
        """How long a flush waits next for confirmations (ms, -1: forever); None once it
        is done: nothing in flight, or ``stop`` passed (the rest is given up, into
        ``failed``)."""
        if not len(window):
            return None
        if stop is not None and time.monotonic() >= stop:
            gone = window.abandon(f"still in flight at flush(timeout={timeout})")
            self._unconfirmed += gone
            failed += gone
            return None
        return wait_ms(window.next_deadline(), stop)

    def _unconfirmed_error(self) -> DeliveryError | None:
        """What flush raises for the events not confirmed since the last flush, if any."""
        unconfirmed, self._unconfirmed = self._unconfirmed, []
        return unconfirmed_error(unconfirmed, self.options.endpoints) if unconfirmed else None

    def _push_error(self, event: str, payload: Any, error: Exception) -> tuple[Bus, dict[str, Any]]:
        """Log a failed event; the bus to fire ``zevents.push.error`` on, and its payload."""
        endpoint = self.options.endpoints
        name = type(error).__name__
        if isinstance(error, RemoteError):
            logger.warning(
                "%r was delivered to %s; the remote handler failed: %s", event, endpoint, error
            )
        else:
            logger.warning("could not deliver %r to %s: %s: %s", event, endpoint, name, error)
        report = {
            "event": event,
            "payload": payload,
            "endpoint": endpoint,
            "error": f"{name}: {error}",
            "error_type": name,
            "listener": repr(self),
        }
        return self.bus or current_bus() or default_bus, report


class EventListener(ListenerBase[EventSocket]):
    """Sends events to a ZeroMQ socket: ``send`` raises, the bus receiver reports.

    Register it on a bus (``bus.listen("orders.*", EventListener(connect=...))``); each
    matching event is sent as ``[name, payload]``. The context and socket are created
    on the first event (or first use of ``socket``), never in ``__init__``.

    ``send(event, payload)`` raises ``DeliveryError`` when an event is not delivered.
    As a bus receiver (``listener(event, payload)``) a failure never raises into the
    firing code: it fires ``zevents.push.error`` on the bus that fired the event, with
    the event, payload, endpoint and error. ``zevents.push.error`` itself is never
    forwarded.

    Args:
        options: A mapping of options, or the name of a connection in the config file.
        bus: The bus that receives ``zevents.push.error``; by default the bus that
            fired the failing event, else the default bus.
        **overrides: Options that win over ``options`` (see ``ListenerOptions``).

    Raises:
        ConfigError: Unknown or invalid options, or an unknown connection name.
    """

    socket_class = EventSocket

    def _init_sending(self) -> None:
        # The lock is re-entrant, so that a send re-entered on its own thread is
        # detected (and raised) instead of deadlocking; zmq sockets are not thread-safe.
        self._lock = self._socket.lock
        self._sending = False
        # Unconfirmed sends skip push (and its checks): one call less on the hot path.
        self._plain = not self.options.confirmed

    def wait_for_peers(self, timeout: float) -> int:
        """Open the socket and wait (at most ``timeout`` seconds) until every ``connect``
        endpoint has a peer whose handshake is done; call it before the first send.

        With ``immediate`` (the default) events go only to peers already connected, so
        a short run to several endpoints started at once would send all of them to the
        first peer up. Returns how many connect endpoints have a peer.

        Raises:
            EndpointError: An endpoint cannot be bound or connected.
        """
        return self._socket.wait_for_peers(timeout)

    def __enter__(self) -> EventListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self, linger: int | None = None) -> None:
        """Flush (a windowed listener waits for the confirmations of what it sent; a
        failure was reported with ``zevents.push.error`` and is logged here), then close
        the socket and the listener's own context. Queued events may still go out for
        ``linger`` milliseconds (the option, unless given); the next event opens a new
        socket."""
        if self._window is not None and len(self._window) and self._socket.is_open:
            try:
                self.flush()
            except DeliveryError as exc:
                logger.warning("closing %r: %s", self, exc)
        super().close(linger)

    # --- sending --------------------------------------------------------------------

    def send(self, event: str, payload: Any = None) -> None:
        """Send one event now; with ``confirmed``, return once the remote receivers ran.

        With ``confirmed`` and a ``window`` of N, return once the event is on the wire,
        waiting only while N events are unconfirmed; an event whose confirmation does not
        come within ``rcvtimeo``, or that failed remotely, fires ``zevents.push.error``
        once, when that is found out (here or in ``flush``), and ``flush`` reports it.

        Raises:
            DeliveryTimeout: No peer took the event within ``sndtimeo`` (``sent`` is
                False: nothing was sent), or, confirmed, no confirmation came within
                ``rcvtimeo`` (``sent`` is True).
            RemoteError: Confirmed: delivered, and a remote receiver raised.
            DeliveryError: Any other failure to send (a closed socket, a send re-entered
                from a signal handler or a receiver while this listener was sending).
            EncodeError: The payload cannot be encoded (nothing was sent).
            EndpointError: The socket could not bind or connect on first use.
        """
        # acquire/try/finally costs half of ``with lock`` on this path.
        lock = self._lock
        lock.acquire()
        if self._sending:
            lock.release()
            # Sending now would interleave frames with the send in progress (and waiting
            # for it would deadlock).
            raise DeliveryError(
                "re-entrant send (an event fired from a signal handler or receiver "
                "while this listener was sending); not sent",
                event=event,
                endpoint=self.options.endpoints,
            )
        self._sending = True
        failed: list[InFlight] = []
        try:
            if self._plain:
                self._socket.get().send_event(event, payload, 0, None, None)
            elif self._window is None:
                self._socket.get().push(event, payload)
            else:
                failed = self._push_windowed(self._window, event, payload)
        except BaseException as exc:
            # KeyboardInterrupt between two frames can leave half a message queued.
            raise self._failure(exc, event, half_sent=True)  # noqa: B904 - chained there
        finally:
            self._sending = False
            lock.release()
            self._report_flights(failed)

    # --- windowed confirmations -----------------------------------------------------

    def _push_windowed(self, window: ConfirmWindow, event: str, payload: Any) -> list[InFlight]:
        """Send with a token once the window has room; the events found failed meanwhile."""
        sock = self._socket.get()
        failed = []
        if window.is_due():  # every quarter window, and whenever it is full
            failed = self._settled(window, sock.read_confirmations(0))
            while window.is_full:
                wait = wait_ms(window.next_deadline())
                failed += self._settled(window, sock.read_confirmations(wait))
        token = window.open(event, payload)
        try:
            sock.send_event(event, payload, 0, None, token)
        except BaseException:
            window.discard(token)
            raise
        return failed

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event sent so far is confirmed (windowed listeners; others
        return at once).

        Args:
            timeout: Seconds to wait at most; None: until each event's own ``rcvtimeo``.

        Raises:
            DeliveryError: Some events sent since the last flush were not confirmed (they
                timed out, failed remotely, or were still unconfirmed at ``timeout``):
                the message says how many and which; ``error.unconfirmed`` lists them as
                ``(event, token)``. Each also fired ``zevents.push.error``, once.
        """
        window = self._window
        if window is None:
            return
        stop = None if timeout is None else time.monotonic() + timeout
        failed: list[InFlight] = []
        with self._lock:
            if len(window):
                sock = self._socket.get()
                while (wait := self._flush_wait(window, stop, timeout, failed)) is not None:
                    failed += self._settled(window, sock.read_confirmations(wait))
            error = self._unconfirmed_error()
        self._report_flights(failed)
        if error is not None:
            raise error

    def _report_flights(self, flights: list[InFlight]) -> None:
        for flight in flights:
            if flight.error is not None:
                self._report(flight.event, flight.payload, flight.error)

    def __call__(self, event: str, payload: Any = None) -> bool:
        """Forward one event (the bus calls this); a failure fires ``zevents.push.error``.

        Returns:
            True when the event was sent (confirmed: and handled remotely), False when
            it failed and ``zevents.push.error`` was fired instead.
        """
        if event == PUSH_ERROR:
            return False
        try:
            self.send(event, payload)
        except Exception as exc:
            self._report(event, payload, exc)
            return False
        return True

    def _report(self, event: str, payload: Any, error: Exception) -> None:
        bus, report = self._push_error(event, payload, error)
        try:
            bus.fire(PUSH_ERROR, report)
        except Exception:
            # The firing code must never see a listener's failure, not even this one.
            logger.exception("a receiver of %s raised", PUSH_ERROR)
