"""What ``serve`` and ``bridge`` share: the receive options, the service and its socket."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click

from zevents._signals import installed_signal_handlers, stop_handlers
from zevents.cli._options import (
    SocketOptions,
    check_hosts,
    connection_options,
    endpoint_option,
    option_group,
    seconds_option,
    socket_type_option,
)
from zevents.cli._security import confirmed_options, curve_options
from zevents.config import DEFAULT_POLL_TIMEOUT, DEFAULT_SNDTIMEO, ListenerOptions
from zevents.errors import ConfigError
from zevents.eventbus import Bus
from zevents.receiving import ReceivingSocket
from zevents.service import EventService

__all__ = [
    "SERVE_SOCKET_TYPES",
    "ReceiveOptions",
    "receive_options",
    "start_receiving",
    "stopping_service",
]

#: Socket types a service can receive on, the default first (the order of the help).
SERVE_SOCKET_TYPES = ("pull", "sub", "router", "dealer", "pair")
#: Seconds a service may take to resolve the hosts it connects to, when it starts.
RESOLVE_TIMEOUT = DEFAULT_SNDTIMEO / 1000


@dataclass(frozen=True)
class ReceiveOptions(SocketOptions):
    """The receiving socket a command was asked for, as given on its command line.

    Attributes:
        prefixes: ``--subscribe`` prefixes (SUB).
        poll_timeout: Seconds without an event before ``zevents.service.idle`` fires.
    """

    prefixes: tuple[str, ...] = ()
    poll_timeout: float = DEFAULT_POLL_TIMEOUT

    @classmethod
    def from_params(cls, ctx: click.Context, params: dict[str, Any]) -> ReceiveOptions:
        """Take the options ``receive_options`` added out of a command's parameters."""
        return cls(
            **cls.take_params(ctx, params),
            bind=(*params.pop("endpoints"), *params.pop("bind")),
            connect=tuple(params.pop("connect")),
            prefixes=tuple(params.pop("prefixes")),
            poll_timeout=params.pop("poll_timeout"),
        )

    def overrides(self) -> dict[str, Any]:
        """The listener options given on the command line, ``--subscribe`` included.

        Raises:
            click.BadParameter: ``--subscribe`` with a socket type other than sub.
        """
        overrides = super().overrides()
        if self.prefixes:
            if self.socket_type not in (None, "sub"):
                raise click.BadParameter(
                    f"--subscribe needs --socket-type sub, not {self.socket_type!r}",
                    param_hint="'--subscribe'",
                )
            overrides["socket_type"] = "sub"
            overrides["subscribe"] = list(self.prefixes)
        return overrides

    def receiving_socket(self) -> ReceivingSocket:
        """The socket to receive on, from the command line and the config (not opened);
        the hosts it connects to are resolved now.

        Raises:
            click.UsageError: No endpoint, ``--config`` without ``--connection``, or
                ``--subscribe`` with a socket type other than sub.
            ConfigError: Bad options, or a socket type that cannot receive.
            EndpointError: A host of a connect endpoint cannot be resolved.
        """
        options = ListenerOptions.build(self.settings())
        receiving = options.receiving_type()
        if receiving not in SERVE_SOCKET_TYPES:
            raise ConfigError(
                f"socket_type {receiving!r} cannot receive events; "
                f"use one of {', '.join(SERVE_SOCKET_TYPES)}"
            )
        check_hosts(options.connect, RESOLVE_TIMEOUT)
        return ReceivingSocket(options)


_RECEIVE_OPTIONS = [
    click.argument("endpoints", metavar="[ENDPOINT]...", nargs=-1),
    endpoint_option("--bind", help="Bind this endpoint too (repeatable), as ENDPOINT does."),
    endpoint_option(
        "--connect",
        help="Connect to this endpoint (repeatable), e.g. to an emit --bind or a PUB; "
        "one socket may bind some endpoints and connect others.",
    ),
    socket_type_option(
        SERVE_SOCKET_TYPES,
        "pull; sub with --subscribe; router (bind) or dealer (connect) with --confirmed",
    ),
    click.option(
        "--subscribe",
        "prefixes",
        multiple=True,
        metavar="PREFIX",
        help="SUB: receive events whose name starts with PREFIX (repeatable; implies "
        "--socket-type sub). [default: everything]",
    ),
    *confirmed_options("Acknowledge each event to its sender once handled (emit --confirmed)."),
    seconds_option(
        "--poll-timeout",
        default=DEFAULT_POLL_TIMEOUT,
        positive=True,
        help="Seconds without an event before zevents.service.idle fires.",
    ),
    *curve_options("server"),
    connection_options,
]


#: Adds ENDPOINT... and the options of a receiving socket to a click command, which
#: gets them as one ``receive`` argument, a ``ReceiveOptions``.
receive_options = option_group("receive", ReceiveOptions.from_params, _RECEIVE_OPTIONS)


@contextlib.contextmanager
def stopping_service(name: str, receive: ReceiveOptions) -> Iterator[EventService]:
    """A service on a bus of its own that SIGTERM and SIGINT stop from now on.

    ``run()`` installs the same handlers; installing them already here makes a signal
    during the set-up (loading handlers, binding) stop the service cleanly too.

    Raises:
        ConfigError: A bad ``poll_timeout``.
    """
    service = EventService(Bus(name), poll_timeout=receive.poll_timeout)
    with installed_signal_handlers(stop_handlers(service.stop)):
        yield service


def start_receiving(service: EventService, socket: ReceivingSocket) -> str:
    """Give ``socket`` to ``service`` and open it now; say where it receives.

    Opening now reports a bind failure before anything else, and shows a wildcard port
    (``tcp://127.0.0.1:*``) as the port actually bound.

    Returns:
        The endpoints, socket type and whether bound or connected, for a log line.

    Raises:
        EndpointError: An endpoint cannot be bound or connected.
    """
    service.listen(socket)
    where = ", ".join(socket.endpoints)
    options = socket.options
    how = "bound" if options.bind else "connected"
    if options.bind and options.connect:
        how = "bound/connected"
    return f"{where} ({socket.socket_type}, {how})"
