"""``EventListener``: a bus receiver that forwards events to a ZeroMQ socket."""

from __future__ import annotations

import logging
import os
import socket as socket_module
import threading
import weakref
from collections.abc import Mapping
from typing import Any, cast

import zmq

from zevents.config import DEFAULT_LINGER, ListenerOptions, load_connection
from zevents.errors import DeliveryError, DeliveryTimeout, EndpointError
from zevents.eventbus import Bus, current_bus, default_bus
from zevents.events import PUSH_ERROR
from zevents.eventsocket import EventSocket
from zevents.serializers import resolve_serializer

logger = logging.getLogger(__name__)

__all__ = ["EventListener"]

_SOCKET_TYPES = {
    "push": zmq.PUSH,
    "pull": zmq.PULL,
    "pub": zmq.PUB,
    "sub": zmq.SUB,
    "dealer": zmq.DEALER,
    "router": zmq.ROUTER,
    "pair": zmq.PAIR,
}

# Bumped in a forked child: sockets inherited across fork must not be used there.
_fork_generation = 0


def _after_fork() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork)


def _ipc_in_use(endpoint: str) -> bool:
    """Whether a live process is listening on the ipc socket file of ``endpoint``.

    libzmq removes an existing socket file before it binds, which would silently take
    the path over from a running service; a stale file (nobody listening) is fine.
    """
    path = endpoint[len("ipc://") :]
    if not endpoint.startswith("ipc://") or path.startswith("@") or not os.path.exists(path):
        return False
    with socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(path)
        except OSError:
            return False
        return True


class _Resources:
    """The context and socket of one listener; closed by ``close`` or the finalizer."""

    __slots__ = ("context", "owns_context", "pid", "socket")

    def __init__(self) -> None:
        self.context: zmq.Context[Any] | None = None
        self.socket: EventSocket | None = None
        self.owns_context = False
        self.pid = os.getpid()

    def close(self, linger: int | None) -> None:
        socket, context = self.socket, self.context
        self.socket = None
        self.context = None
        if os.getpid() != self.pid:
            return  # inherited across fork: the parent owns them
        if socket is not None and not socket.closed:
            socket.close(linger=linger)
        if context is not None and self.owns_context and not context.closed:
            # Sockets made from this context by hand are closed with it.
            context.destroy(linger=linger)


class EventListener:
    """Forwards every event it receives to a ZeroMQ socket.

    Register it on a bus (``bus.listen("orders.*", EventListener(connect=...))``); each
    matching event is sent as ``[name, payload]``. The context and socket are created
    on the first event (or first use of ``socket``), never in ``__init__``.

    A failed send (no peer within ``sndtimeo``, no confirmation within ``rcvtimeo``, a
    payload that cannot be encoded, a closed socket) never raises into the firing code:
    it fires ``zevents.push.error`` on the bus that fired the event, with the event,
    payload, endpoint and error. ``zevents.push.error`` itself is never forwarded.

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
        if isinstance(options, str):
            options = load_connection(options)
        self.options = ListenerOptions.build(options, **overrides)
        self.serializer = resolve_serializer(self.options.serializer)
        self.bus = bus
        self._receiving = False
        # Re-entrant, so that a send re-entered on its own thread is detected (and
        # reported) instead of deadlocking; zmq sockets are not thread-safe.
        self._lock = threading.RLock()
        self._sending = False
        self._resources = _Resources()
        self._generation = _fork_generation
        exit_linger = self.options.linger if self.options.linger >= 0 else DEFAULT_LINGER
        self._finalizer = weakref.finalize(self, self._resources.close, exit_linger)

    def __repr__(self) -> str:
        role = "receiving" if self._receiving else "sending"
        return f"<EventListener {role} {self.socket_type} {self.options.endpoints}>"

    # --- socket lifecycle -----------------------------------------------------------

    @property
    def socket_type(self) -> str:
        """The socket type this listener uses in its current role."""
        if self._receiving:
            return self.options.receiving_type()
        return self.options.sending_type()

    @property
    def is_open(self) -> bool:
        """Whether the socket exists (it is created lazily)."""
        return self._resources.socket is not None

    @property
    def socket(self) -> EventSocket:
        """The socket, created (bound and connected) on first use.

        Raises:
            EndpointError: An endpoint cannot be bound or connected.
        """
        sock = self._resources.socket
        if sock is None or self._generation != _fork_generation:
            with self._lock:
                sock = self._open()
        return sock

    @property
    def endpoints(self) -> list[str]:
        """The bound endpoints as resolved (``tcp://127.0.0.1:*`` shows its port), then
        the connected ones. Opens the socket."""
        sock = self.socket
        bound = [str(e) for e in getattr(sock, "_zevents_bound", [])]
        return bound + list(self.options.connect)

    def for_receiving(self) -> EventListener:
        """Switch this listener to the receiving role (used by ``EventService``).

        A bind listener with no ``socket_type`` becomes PULL (ROUTER when confirmed).
        """
        if not self._receiving:
            with self._lock:
                if self._resources.socket is not None:
                    self._resources.close(0)
                self._receiving = True
        return self

    def _open(self) -> EventSocket:
        resources = self._resources
        if self._generation != _fork_generation:
            # A socket inherited across fork belongs to the parent: start afresh.
            self._resources = resources = _Resources()
            self._finalizer.detach()
            linger = self.options.linger if self.options.linger >= 0 else DEFAULT_LINGER
            self._finalizer = weakref.finalize(self, resources.close, linger)
            self._generation = _fork_generation
        if resources.socket is not None:
            return resources.socket
        opts = self.options
        if resources.context is None or resources.context.closed:
            if opts.persistent:
                resources.context = zmq.Context.instance(opts.threads)
                resources.owns_context = False
            else:
                resources.context = zmq.Context(opts.threads)
                resources.owns_context = True
        socket_type = self.socket_type
        sock = cast(
            EventSocket,
            resources.context.socket(_SOCKET_TYPES[socket_type], socket_class=EventSocket),
        )
        try:
            for name, value in opts.socket_options.items():
                sock.setsockopt(name, value)
            sock.setsockopt(zmq.LINGER, opts.linger)
            sock.setsockopt(zmq.SNDTIMEO, opts.sndtimeo)
            sock.setsockopt(zmq.RCVTIMEO, opts.rcvtimeo)
            if opts.immediate and not self._receiving:
                sock.setsockopt(zmq.IMMEDIATE, 1)
            if socket_type == "router":
                # Unroutable replies raise instead of vanishing.
                sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sock.serializer = self.serializer
            sock.confirmed = opts.confirmed and not self._receiving
            sock.ack_timeout = opts.rcvtimeo
            bound = []
            for endpoint in opts.bind:
                if _ipc_in_use(endpoint):
                    raise EndpointError(
                        f"cannot bind {endpoint}: another process is listening on it "
                        "(give each service its own ipc path)"
                    )
                try:
                    sock.bind(endpoint)
                except zmq.ZMQError as exc:
                    raise EndpointError(f"cannot bind {endpoint}: {exc}") from exc
                bound.append(bytes(sock.getsockopt(zmq.LAST_ENDPOINT)).decode())
            sock.__dict__["_zevents_bound"] = bound
            for endpoint in opts.connect:
                try:
                    sock.connect(endpoint)
                except zmq.ZMQError as exc:
                    raise EndpointError(f"cannot connect {endpoint}: {exc}") from exc
            if socket_type == "sub":
                for prefix in opts.subscribe or ("",):
                    sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        except BaseException:
            sock.close(linger=0)
            raise
        resources.socket = sock
        logger.debug("opened %r", self)
        return sock

    def close(self, linger: int | None = None) -> None:
        """Close the socket (and the listener's own context).

        Queued events may still go out for ``linger`` milliseconds (the option, unless
        given). The next event opens a new socket.
        """
        with self._lock:
            self._resources.close(self.options.linger if linger is None else linger)

    def __enter__(self) -> EventListener:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- forwarding -----------------------------------------------------------------

    def __call__(self, event: str, payload: Any = None) -> bool:
        """Forward one event; the bus calls this.

        Returns:
            True when the event was sent (confirmed: and handled remotely), False when
            it failed and ``zevents.push.error`` was fired instead.
        """
        if event == PUSH_ERROR:
            return False
        # acquire/try/finally costs half of ``with lock`` on this path; the lock is
        # released before a failure is reported (the report fires on a bus).
        lock = self._lock
        lock.acquire()
        if self._sending:
            # The same thread is already inside a send: a signal handler or a receiver
            # fired an event that came back here. Sending now would interleave frames
            # (and waiting would deadlock), so report it instead.
            lock.release()
            self._report(
                event,
                payload,
                DeliveryError(
                    "re-entrant send (an event fired from a signal handler or receiver "
                    "while this listener was sending); not sent",
                    event=event,
                    endpoint=self.options.endpoints,
                ),
            )
            return False
        self._sending = True
        try:
            sock = self._resources.socket
            if sock is None or self._generation != _fork_generation:
                sock = self._open()
            sock.push(event, payload)
            return True
        except zmq.Again:
            error: Exception = DeliveryTimeout(
                f"no peer took the event within sndtimeo={self.options.sndtimeo} ms",
                event=event,
                endpoint=self.options.endpoints,
            )
        except DeliveryError as exc:
            # No usable answer on this socket: a new one starts clean.
            self._resources.close(0)
            error = exc
        except zmq.ZMQError as exc:
            self._resources.close(0)
            error = DeliveryError(str(exc), event=event, endpoint=self.options.endpoints)
        except Exception as exc:
            error = exc
        except BaseException:
            # KeyboardInterrupt between two frames leaves half a message queued: a new
            # socket keeps it from being glued to the next event.
            self._resources.close(0)
            raise
        finally:
            self._sending = False
            lock.release()
        self._report(event, payload, error)
        return False

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
