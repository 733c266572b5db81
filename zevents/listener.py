"""``EventListener``: sends events to a ZeroMQ socket; as a bus receiver, forwards them."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import zmq

from zevents._sockets import LazySocket, SocketOwner
from zevents.config import ListenerOptions, load_connection
from zevents.confirmations import ConfirmWindow, InFlight, unconfirmed_error
from zevents.errors import DeliveryError, DeliveryTimeout
from zevents.eventbus import Bus, current_bus, default_bus
from zevents.events import PUSH_ERROR
from zevents.eventsocket import EventSocket
from zevents.serializers import resolve_serializer

logger = logging.getLogger(__name__)

__all__ = ["EventListener", "options_of"]


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


class EventListener(SocketOwner):
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
        self._socket = LazySocket(self.options, self.serializer, "send")
        # The lock is re-entrant, so that a send re-entered on its own thread is
        # detected (and raised) instead of deadlocking; zmq sockets are not thread-safe.
        self._lock = self._socket.lock
        self._sending = False
        opts = self.options
        #: Confirmed with a window of several events: those in flight, and those that
        #: failed since the last flush.
        self._window: ConfirmWindow | None = None
        if opts.confirmed and opts.window > 1:
            timeout = None if opts.rcvtimeo < 0 else opts.rcvtimeo / 1000
            self._window = ConfirmWindow(opts.window, timeout, opts.endpoints)
        self._unconfirmed: list[InFlight] = []

    def __repr__(self) -> str:
        return f"<EventListener sending {self.socket_type} {self.options.endpoints}>"

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
            if self._window is None:
                self._socket.get().push(event, payload)
            else:
                failed = self._push_windowed(self._window, event, payload)
        except zmq.Again:
            raise DeliveryTimeout(
                f"no peer took the event within sndtimeo={self.options.sndtimeo} ms",
                event=event,
                endpoint=self.options.endpoints,
            ) from None
        except DeliveryError as exc:
            # No usable answer on this socket: a new one starts clean.
            self._socket.reset()
            exc.endpoint = exc.endpoint or self.options.endpoints
            raise
        except zmq.ZMQError as exc:
            self._socket.reset()
            raise DeliveryError(str(exc), event=event, endpoint=self.options.endpoints) from exc
        except Exception:
            raise  # EncodeError, EndpointError: nothing half-sent
        except BaseException:
            # KeyboardInterrupt between two frames leaves half a message queued: a new
            # socket keeps it from being glued to the next event.
            self._socket.reset()
            raise
        finally:
            self._sending = False
            lock.release()
            self._report_flights(failed)

    # --- windowed confirmations -----------------------------------------------------

    @property
    def in_flight(self) -> int:
        """How many events were sent and are not confirmed yet (windowed listeners)."""
        return len(self._window) if self._window is not None else 0

    def _push_windowed(self, window: ConfirmWindow, event: str, payload: Any) -> list[InFlight]:
        """Send with a token once the window has room; the events found failed meanwhile."""
        sock = self._socket.get()
        failed = self._settle(sock, window, 0)
        while window.is_full:
            failed += self._settle(sock, window, _wait_ms(window.next_deadline(), None))
        window.add(sock.push_token(event, payload), event, payload, time.monotonic())
        return failed

    def _settle(self, sock: EventSocket, window: ConfirmWindow, wait_ms: int) -> list[InFlight]:
        """Take the confirmations that came (waiting up to ``wait_ms`` for the first),
        expire what is past its time; the events found failed, kept for ``flush``."""
        failed = []
        for token, status in sock.read_confirmations(wait_ms):
            flight = window.confirm(token, status)
            if flight is not None and flight.error is not None:
                failed.append(flight)
        failed += window.expire(time.monotonic())
        self._unconfirmed += failed
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
            sock = self._socket.get() if len(window) else None
            while sock is not None and len(window):
                if stop is not None and time.monotonic() >= stop:
                    gone = window.abandon(f"still in flight at flush(timeout={timeout})")
                    self._unconfirmed += gone
                    failed += gone
                    break
                failed += self._settle(sock, window, _wait_ms(window.next_deadline(), stop))
            unconfirmed, self._unconfirmed = self._unconfirmed, []
        self._report_flights(failed)
        if unconfirmed:
            raise unconfirmed_error(unconfirmed, self.options.endpoints)

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
        logger.warning(
            "could not deliver %r to %s: %s: %s",
            event,
            self.options.endpoints,
            type(error).__name__,
            error,
        )
        bus = self.bus or current_bus() or default_bus
        try:
            bus.fire(
                PUSH_ERROR,
                {
                    "event": event,
                    "payload": payload,
                    "endpoint": self.options.endpoints,
                    "error": f"{type(error).__name__}: {error}",
                    "error_type": type(error).__name__,
                    "listener": repr(self),
                },
            )
        except Exception:
            # The firing code must never see a listener's failure, not even this one.
            logger.exception("a receiver of %s raised", PUSH_ERROR)


def _wait_ms(deadline: float | None, stop: float | None) -> int:
    """Milliseconds to wait for a confirmation: until the oldest event's deadline or the
    caller's ``stop``, whichever is first (-1: neither is set)."""
    ends = [t for t in (deadline, stop) if t is not None]
    if not ends:
        return -1
    return max(0, math.ceil((min(ends) - time.monotonic()) * 1000))
