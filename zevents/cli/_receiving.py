"""What ``serve`` and ``bridge`` share: the receiving socket's options and set-up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from zevents.cli._options import Seconds, given, listener_settings
from zevents.config import DEFAULT_POLL_TIMEOUT
from zevents.errors import ConfigError
from zevents.listener import EventListener
from zevents.service import EventService

logger = logging.getLogger(__name__)

__all__ = ["SERVE_SOCKET_TYPES", "open_and_log", "receiving_listener", "receiving_options"]

#: Socket types a service can receive on.
SERVE_SOCKET_TYPES = ("pull", "sub", "router", "dealer", "pair")

F = TypeVar("F", bound=Callable[..., Any])


def receiving_options(command: F) -> F:
    """Add ENDPOINT... and the options of a receiving socket to a click command."""
    decorators = [
        click.argument("endpoints", metavar="[ENDPOINT]...", nargs=-1),
        click.option(
            "--bind/--connect",
            "bind",
            default=True,
            show_default=True,
            help="Bind the ENDPOINTs (default), or connect to them.",
        ),
        click.option(
            "--socket-type",
            type=click.Choice(SERVE_SOCKET_TYPES, case_sensitive=False),
            help="Socket type. [default: pull; sub with --subscribe; router (bind) or "
            "dealer (connect) with --confirmed]",
        ),
        click.option(
            "--subscribe",
            "prefixes",
            multiple=True,
            metavar="PREFIX",
            help="SUB: receive events whose name starts with PREFIX (repeatable; implies "
            "--socket-type sub). [default: everything]",
        ),
        click.option(
            "--confirmed",
            is_flag=True,
            help="Acknowledge each event to its sender once handled (emit --confirmed).",
        ),
        click.option(
            "--poll-timeout",
            type=Seconds(positive=True),
            default=DEFAULT_POLL_TIMEOUT,
            show_default=True,
            metavar="SECONDS",
            help="Seconds without an event before zevents.service.idle fires.",
        ),
        click.option(
            "--config",
            metavar="FILE",
            help="Config file holding --connection (default: $ZEVENTS_CONFIG, "
            "./zevents.toml, ./pyproject.toml).",
        ),
        click.option(
            "--connection",
            metavar="NAME",
            help="Take the socket options from this connection of the config file; "
            "command-line options win.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def receiving_listener(
    ctx: click.Context,
    service: EventService,
    *,
    endpoints: tuple[str, ...],
    bind: bool,
    socket_type: str | None,
    prefixes: tuple[str, ...],
    confirmed: bool,
    config: str | None,
    connection: str | None,
) -> EventListener:
    """Build the listener a service receives on, from the command line and config.

    Raises:
        click.BadParameter: ``--subscribe`` with a socket type other than sub.
        ConfigError: Bad options, or a socket type that cannot receive.
    """
    overrides: dict[str, Any] = {}
    if socket_type is not None:
        overrides["socket_type"] = socket_type.lower()
    if prefixes:
        if socket_type is not None and socket_type.lower() != "sub":
            raise click.BadParameter(
                f"--subscribe needs --socket-type sub, not {socket_type!r}",
                ctx=ctx,
                param_hint="'--subscribe'",
            )
        overrides["socket_type"] = "sub"
        overrides["subscribe"] = list(prefixes)
    if given(ctx, "confirmed"):
        overrides["confirmed"] = confirmed
    settings = listener_settings(
        ctx,
        endpoints=endpoints,
        bind=bind,
        config=config,
        connection=connection,
        overrides=overrides,
    )
    listener = EventListener(settings, bus=service.bus)
    receiving = listener.options.receiving_type()
    if receiving not in SERVE_SOCKET_TYPES:
        raise ConfigError(
            f"socket_type {receiving!r} cannot receive events; "
            f"use one of {', '.join(SERVE_SOCKET_TYPES)}"
        )
    return listener


def open_and_log(service: EventService, listener: EventListener, target: str) -> None:
    """Give ``listener`` to ``service`` and open its socket now, logging where it is.

    Opening now reports a bind failure before anything else, and logs a wildcard port
    (``tcp://127.0.0.1:*``) as the port actually bound.

    Raises:
        EndpointError: An endpoint cannot be bound or connected.
    """
    service.listen(listener)
    receiving = service.listeners[-1]
    where = ", ".join(receiving.endpoints)
    how = "bound" if listener.options.bind else "connected"
    if listener.options.bind and listener.options.connect:
        how = "bound/connected"
    logger.info("receiving on %s (%s, %s) -> %s", where, receiving.socket_type, how, target)
