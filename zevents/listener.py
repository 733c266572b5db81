"""``EventListener``: sends events to a ZeroMQ socket; as a bus receiver, forwards them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import zmq

from zevents._sockets import LazySocket, SocketOwner
from zevents.config import ListenerOptions, load_connection
from zevents.errors import DeliveryError, DeliveryTimeout
from zevents.eventbus import Bus, current_bus, default_bus
from zevents.events import PUSH_ERROR
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

    # --- sending --------------------------------------------------------------------

    def send(self, event: str, payload: Any = None) -> None:
        """Send one event now; with ``confirmed``, return once the remote receivers ran.

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
        try:
            self._socket.get().push(event, payload)
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
