"""Creating one socket from ``ListenerOptions``: type, options, trust, bind and connect
(private; ``zevents._sockets.LazySocket`` calls it when a socket is first used)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

import zmq

from zevents._ipc import ipc_in_use
from zevents._trust import ConnectionLog, apply_curve, authenticator_for, restrict_ipc_files
from zevents.config import ZEROEVENTS, ListenerOptions
from zevents.errors import EndpointError
from zevents.eventsocket import EventSocketBase
from zevents.serializers import Serializer

__all__ = ["SOCKET_TYPES", "Role", "S", "open_socket", "socket_type_of"]

#: "send": a listener forwarding events; "receive": a service's socket.
Role = Literal["send", "receive"]
#: The socket class: ``EventSocket``, or ``zevents.aio.AsyncEventSocket``.
S = TypeVar("S", bound=EventSocketBase)

#: Socket type name -> zmq constant.
SOCKET_TYPES = {
    "push": zmq.PUSH,
    "pull": zmq.PULL,
    "pub": zmq.PUB,
    "sub": zmq.SUB,
    "dealer": zmq.DEALER,
    "router": zmq.ROUTER,
    "pair": zmq.PAIR,
}


def socket_type_of(options: ListenerOptions, role: Role) -> str:
    """The socket type ``options`` use in ``role``."""
    return options.sending_type() if role == "send" else options.receiving_type()


def _apply_options(
    sock: EventSocketBase, options: ListenerOptions, socket_type: str, role: Role
) -> None:
    for name, value in options.socket_options.items():
        sock.setsockopt(name, value)
    sock.setsockopt(zmq.LINGER, options.linger)
    sock.setsockopt(zmq.MAXMSGSIZE, options.max_message_size)
    if sock.zmq_timeouts:
        sock.setsockopt(zmq.SNDTIMEO, options.sndtimeo)
        sock.setsockopt(zmq.RCVTIMEO, options.rcvtimeo)
    sock.send_timeout = options.sndtimeo
    if options.immediate and role == "send":
        sock.setsockopt(zmq.IMMEDIATE, 1)
    if socket_type == "router":
        # Unroutable replies raise instead of vanishing.
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.confirmed = bool(options.confirmed) and role == "send"
    sock.zeroevents = options.confirmed == ZEROEVENTS
    sock.confirm_timeout = options.rcvtimeo


def _bind_all(sock: EventSocketBase, endpoints: tuple[str, ...]) -> list[str]:
    """Bind every endpoint; return them as resolved (a ``*`` port shows its number)."""
    bound = []
    for endpoint in endpoints:
        if ipc_in_use(endpoint):
            raise EndpointError(
                f"cannot bind {endpoint}: another process is listening on it "
                "(give each service its own ipc path)"
            )
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            raise EndpointError(f"cannot bind {endpoint}: {exc}") from exc
        bound.append(bytes(sock.getsockopt(zmq.LAST_ENDPOINT)).decode())
    return bound


def _connect_all(sock: EventSocketBase, endpoints: tuple[str, ...]) -> None:
    for endpoint in endpoints:
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as exc:
            raise EndpointError(f"cannot connect {endpoint}: {exc}") from exc


def open_socket(
    context: zmq.Context[Any],
    options: ListenerOptions,
    serializer: Serializer,
    role: Role,
    socket_class: type[S],
    on_created: Callable[[S], None] | None = None,
) -> tuple[S, list[str], ConnectionLog | None]:
    """Create, configure, bind and connect the socket ``options`` describe: with its
    message size limit, CURVE keys (and, for a server with ``curve_allow``, the
    context's ZAP authenticator), ipc file permissions, and for a receiving socket the
    log of refused connections.

    Args:
        context: The context to create it in.
        options: What to create.
        serializer: Its payload serializer.
        role: ``"send"`` or ``"receive"``.
        socket_class: ``EventSocket``, or ``zevents.aio.AsyncEventSocket``.
        on_created: Called with the socket before it binds or connects (to attach a
            monitor that must see every connection).

    Returns:
        The socket, its bound endpoints as resolved, and its connection log.

    Raises:
        EndpointError: An endpoint cannot be bound or connected (the socket is closed).
        ConfigError: The context's authenticator allows another key directory.
        OSError: The permissions of a bound ipc file cannot be set.
    """
    socket_type = socket_type_of(options, role)
    sock = cast(S, context.socket(SOCKET_TYPES[socket_type], socket_class=socket_class))
    log = None
    authenticator = None
    try:
        _apply_options(sock, options, socket_type, role)
        sock.serializer = serializer
        if apply_curve(sock, options) == "server" and options.curve_allow is not None:
            authenticator = authenticator_for(context, options.curve_allow)
        if role == "receive" or not options.connect:
            # (a sending socket that connects keeps its monitor for wait_for_peers)
            log = ConnectionLog(sock, options.endpoints, authenticator)
        if on_created is not None:
            on_created(sock)
        bound = _bind_all(sock, options.bind)
        restrict_ipc_files(bound, options.ipc_mode)
        _connect_all(sock, options.connect)
        if socket_type == "sub":
            for prefix in options.subscribe or ("",):
                sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    except BaseException:
        if log is not None:
            log.close()
        sock.close(linger=0)
        raise
    return sock, bound, log
