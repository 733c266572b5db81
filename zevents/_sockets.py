"""Opening an event socket from ``ListenerOptions``, lazily and fork-safely (private).

Listeners (the sending side) and receiving sockets (a service's side), sync or asyncio,
each hold one ``LazySocket``; the role picks the default socket type, and whether
``immediate`` and confirmation waits apply.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, Generic

import zmq

from zevents._ipc import ipc_files, remove_ipc_files
from zevents._opening import Role, S, open_socket, socket_type_of
from zevents._trust import ConnectionLog, parse_event, stop_authenticator
from zevents.config import DEFAULT_LINGER, ListenerOptions
from zevents.confirmations import Deadline
from zevents.eventsocket import EventSocketBase
from zevents.serializers import Serializer

logger = logging.getLogger(__name__)

__all__ = ["LazySocket", "PeerWatch", "SocketOwner", "fork_generation"]

# Bumped in a forked child: sockets inherited across fork must not be used there.
_fork_generation = 0


def _after_fork() -> None:
    global _fork_generation
    _fork_generation += 1


os.register_at_fork(after_in_child=_after_fork)


def fork_generation() -> int:
    """How many forks this process descends from (changes in a forked child)."""
    return _fork_generation


class _Resources(Generic[S]):
    """One context and socket; closed by ``close`` or by the finalizer."""

    __slots__ = ("bound", "context", "ipc_files", "log", "owns_context", "pid", "socket")

    def __init__(self) -> None:
        self.context: zmq.Context[Any] | None = None
        self.socket: S | None = None
        self.bound: list[str] = []
        self.ipc_files: list[tuple[str, int]] = []
        self.log: ConnectionLog | None = None
        self.owns_context = False
        self.pid = os.getpid()

    def close(self, linger: int | None) -> None:
        socket, context, log = self.socket, self.context, self.log
        self.socket = self.context = self.log = None
        if os.getpid() != self.pid:
            return  # inherited across fork: the parent owns them
        if log is not None:
            log.close()
        if socket is not None and not socket.closed:
            socket.close(linger=linger)
        if context is not None and self.owns_context and not context.closed:
            stop_authenticator(context)
            # Sockets made from this context by hand are closed with it.
            context.destroy(linger=linger)
        files, self.ipc_files = self.ipc_files, []
        remove_ipc_files(files)


class LazySocket(Generic[S]):
    """The socket of a listener or a receiving endpoint, created on first use.

    It is safe across fork (a child opens its own), closed at garbage collection or
    exit (waiting at most ``linger``, 2 s if that is -1), and guarded by a re-entrant
    lock that its owner also uses around sends.

    Args:
        options: The validated options.
        serializer: The payload serializer of the socket.
        role: ``"send"`` or ``"receive"``.
        socket_class: ``EventSocket``, or ``zevents.aio.AsyncEventSocket``.
    """

    def __init__(
        self,
        options: ListenerOptions,
        serializer: Serializer,
        role: Role,
        socket_class: type[S],
    ) -> None:
        self.options = options
        self.serializer = serializer
        self.role: Role = role
        self.socket_class = socket_class
        self.socket_type = socket_type_of(options, role)
        self.lock = threading.RLock()
        self._resources: _Resources[S] = _Resources()
        self._generation = _fork_generation
        self._exit_linger = options.linger if options.linger >= 0 else DEFAULT_LINGER
        self._finalizer = weakref.finalize(self, self._resources.close, self._exit_linger)

    @property
    def is_open(self) -> bool:
        """Whether the socket exists."""
        return self._resources.socket is not None

    @property
    def owns_context(self) -> bool:
        """Whether the context is this socket's own (not the process-wide one)."""
        return self._resources.owns_context

    @property
    def context(self) -> zmq.Context[Any] | None:
        """The context, once the socket was opened."""
        return self._resources.context

    @property
    def bound(self) -> list[str]:
        """The bound endpoints as resolved (empty until opened)."""
        return list(self._resources.bound)

    def get(self) -> S:
        """The socket, opened now if needed (call with ``lock`` held, or via ``socket``).

        Raises:
            EndpointError: An endpoint cannot be bound or connected.
        """
        sock = self._resources.socket
        if sock is None or self._generation != _fork_generation:
            sock = self._open()
        return sock

    def wait_for_peers(self, timeout: float) -> int:
        """Open the socket and wait until each connect endpoint has a peer (its ZeroMQ
        handshake done), for at most ``timeout`` seconds; how many have one (see
        ``EventListener.wait_for_peers``)."""
        with self.lock:
            watch = self.watch_peers()
            deadline = Deadline(round(timeout * 1000))
            try:
                while (wait := watch.next_wait(deadline)) and watch.monitor.poll(wait):
                    watch.record()
            finally:
                count = watch.close()
        return count

    def watch_peers(self) -> PeerWatch:
        """Open the socket afresh with a monitor of its handshakes (only a socket opened
        here can be watched from its first connection; an open one is closed). Call with
        ``lock`` held; close the watch when done."""
        monitors: list[zmq.Socket[bytes]] = []

        def watch(sock: S) -> None:
            monitors.append(sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED))

        self._resources.close(0)
        sock = self._open(watch)
        # watch() ran before the socket connected
        return PeerWatch(sock, monitors[0], set(self.options.connect))

    @property
    def socket(self) -> S:
        """The socket, opened on first use."""
        sock = self._resources.socket
        if sock is None or self._generation != _fork_generation:
            with self.lock:
                sock = self._open()
        return sock

    def _open(self, on_created: Callable[[S], None] | None = None) -> S:
        if self._generation != _fork_generation:
            # A socket inherited across fork belongs to the parent: start afresh.
            self._finalizer.detach()
            self._resources = _Resources()
            self._finalizer = weakref.finalize(self, self._resources.close, self._exit_linger)
            self._generation = _fork_generation
        resources = self._resources
        if resources.socket is not None:
            return resources.socket
        if resources.context is None or resources.context.closed:
            if self.options.persistent:
                resources.context = zmq.Context.instance(self.options.threads)
                resources.owns_context = False
            else:
                resources.context = zmq.Context(self.options.threads)
                resources.owns_context = True
        resources.socket, resources.bound, resources.log = open_socket(
            resources.context,
            self.options,
            self.serializer,
            self.role,
            self.socket_class,
            on_created,
        )
        resources.ipc_files = ipc_files(resources.bound)
        logger.debug("opened %s %s socket on %s", self.role, self.socket_type, self.endpoints)
        return resources.socket

    @property
    def endpoints(self) -> str:
        """The endpoints, for messages."""
        return self.options.endpoints

    def close(self, linger: int | None = None) -> None:
        """Close the socket and the own context; ``linger`` defaults to the option's."""
        with self.lock:
            self._resources.close(self.options.linger if linger is None else linger)

    def reset(self) -> None:
        """Drop the socket at once (linger 0): its state is unusable, a new one starts
        clean. Call with ``lock`` held."""
        self._resources.close(0)


class PeerWatch:
    """The connect endpoints of ``sock`` whose handshake its ``monitor`` reported."""

    def __init__(self, sock: EventSocketBase, monitor: zmq.Socket[bytes], wanted: set[str]):
        self.monitor, self.wanted, self._sock = monitor, wanted, sock
        self.done: set[str] = set()

    def next_wait(self, deadline: Deadline) -> int:
        """Milliseconds to wait for the next report; 0 once every wanted endpoint has a
        peer, or ``deadline`` passed."""
        return 0 if not self.wanted - self.done else max(0, deadline.left_ms())

    def record(self) -> None:
        """Take one report of the monitor (once it is readable)."""
        self.done.add(parse_event(self.monitor.recv_multipart())[2])

    def close(self) -> int:
        """Stop watching; how many wanted endpoints have a peer."""
        self._sock.disable_monitor()
        self.monitor.close(linger=0)
        return len(self.wanted & self.done)


class SocketOwner(Generic[S]):
    """What a listener and a receiving socket share: a ``LazySocket`` and its views."""

    options: ListenerOptions
    _socket: LazySocket[S]

    @property
    def socket_type(self) -> str:
        """The socket type in this owner's role."""
        return self._socket.socket_type

    @property
    def is_open(self) -> bool:
        """Whether the socket exists (it is created lazily)."""
        return self._socket.is_open

    @property
    def socket(self) -> S:
        """The socket, created (bound and connected) on first use.

        Raises:
            EndpointError: An endpoint cannot be bound or connected.
        """
        return self._socket.socket

    @property
    def endpoints(self) -> list[str]:
        """The bound endpoints as resolved (``tcp://127.0.0.1:*`` shows its port), then
        the connected ones. Opens the socket."""
        self._socket.socket  # noqa: B018 - binds, so the resolved ports are known
        return self._socket.bound + list(self.options.connect)

    def close(self, linger: int | None = None) -> None:
        """Close the socket (and its own context); the next use opens a new one. Queued
        events may still go out for ``linger`` milliseconds (the option, unless given)."""
        self._socket.close(linger)
