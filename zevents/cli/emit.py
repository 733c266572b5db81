"""``zevents emit``: send one event, N copies, or a stream of JSON lines from stdin."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import click

from zevents.cli._lines import BadLine, Line, check_event, read_lines
from zevents.cli._logging import verbosity_of
from zevents.cli._options import (
    Seconds,
    SocketOptions,
    check_hosts,
    connection_options,
    endpoint_option,
    given,
    option_group,
    parse_json,
    seconds_option,
    seconds_to_ms,
    socket_type_option,
    verbosity_options,
)
from zevents.cli._security import SocketCommand, confirmed_options, curve_options
from zevents.cli._sending import (
    DEFAULT_PUB_WAIT,
    DEFAULT_WINDOW,
    send_all,
    send_timeout,
    window_bus,
)
from zevents.config import DEFAULT_SNDTIMEO
from zevents.errors import ConfigError
from zevents.listener import EventListener

__all__ = ["BadLine", "Line", "SendOptions", "emit", "read_lines"]

#: Socket types ``emit`` can send on (a ROUTER needs a peer address, so it is left out).
EMIT_SOCKET_TYPES = ("push", "pub", "dealer", "pair")


@dataclass(frozen=True)
class SendOptions(SocketOptions):
    """The sending socket ``emit`` was asked for, as given on its command line.

    Attributes:
        timeout: ``--timeout`` seconds; ``None`` when not given.
    """

    timeout: float | None = None

    @classmethod
    def from_params(cls, ctx: click.Context, params: dict[str, Any]) -> SendOptions:
        """Take the options ``send_options`` added out of a command's parameters."""
        timeout = params.pop("timeout")
        return cls(
            **cls.take_params(ctx, params),
            connect=(*params.pop("endpoints"), *params.pop("connect")),
            bind=tuple(params.pop("bind")),
            timeout=timeout if given(ctx, "timeout") else None,
        )

    def overrides(self) -> dict[str, Any]:
        """The listener options given on the command line, ``--timeout`` included."""
        overrides = super().overrides()
        if self.timeout is not None:
            millis = seconds_to_ms(self.timeout)
            overrides.update(sndtimeo=millis, rcvtimeo=millis, linger=millis)
        return overrides

    def listener(self, *, many: bool, window: int | None) -> EventListener:
        """The listener to send with (its socket is not opened yet); the hosts it
        connects to are resolved now.

        Args:
            many: The run sends several events (stdin, ``--count``): confirmed, it keeps
                ``DEFAULT_WINDOW`` in flight unless ``window`` says otherwise.
            window: ``--window``, if given.

        Raises:
            click.UsageError: No endpoint, ``--config`` without ``--connection``, or
                ``--window`` without confirmations.
            ConfigError: Bad options, or a socket type ``emit`` cannot send on.
            EndpointError: A host of a connect endpoint cannot be resolved.
        """
        settings = self.settings()
        confirmed = settings.get("confirmed")
        if window is not None and not confirmed:
            raise click.UsageError("--window N needs --confirmed (it counts confirmations)")
        if window is None and many and confirmed is True:
            window = DEFAULT_WINDOW
        if window is not None:
            settings["window"] = window
        bus = window_bus() if window is not None and window > 1 else None
        listener = EventListener(settings, bus=bus)
        sending = listener.options.sending_type()
        if sending not in EMIT_SOCKET_TYPES:
            raise ConfigError(
                f"socket_type {sending!r} cannot send events here; "
                f"use one of {', '.join(EMIT_SOCKET_TYPES)}"
            )
        check_hosts(listener.options.connect, send_timeout(listener))
        return listener


#: Adds the options of the sending socket to ``emit``, which gets them as one ``send``
#: argument, a ``SendOptions``.
send_options = option_group(
    "send",
    SendOptions.from_params,
    [
        click.option(
            "-e",
            "--endpoint",
            "endpoints",
            multiple=True,
            metavar="ENDPOINT",
            help="Endpoint to send to, e.g. tcp://127.0.0.1:5555 (repeatable); the same "
            "as --connect.",
        ),
        endpoint_option(
            "--connect", help="Connect the socket to this endpoint (repeatable), as -e does."
        ),
        endpoint_option(
            "--bind",
            help="Bind the socket to this endpoint (repeatable), for services that "
            "connect to emit.",
        ),
        socket_type_option(EMIT_SOCKET_TYPES, "push; dealer with --confirmed"),
        *confirmed_options("Wait for each event's acknowledgement (serve --confirmed)."),
        seconds_option(
            "--timeout",
            default=DEFAULT_SNDTIMEO / 1000,
            positive=True,
            help="How long a send may wait for a peer, an acknowledgement, and the final flush.",
        ),
        *curve_options("client"),
        connection_options,
    ],
)


_EPILOG = """\b
Examples:
  zevents emit -e tcp://127.0.0.1:5555 orders.created '{"id": 1}'
  zevents emit orders.created '{"id": 1}' --connect tcp://127.0.0.1:5555
  zevents emit -e tcp://127.0.0.1:5555 --confirmed --timeout 5 orders.created '{"id": 1}'
  zevents emit -e tcp://127.0.0.1:5555 -e tcp://127.0.0.1:5556 --count 1000 ping
  zevents emit --bind tcp://127.0.0.1:5555 --timeout 10 orders.created '{"id": 1}'
  zevents emit -e tcp://127.0.0.1:5555 orders.created - < payloads.jsonl
  zevents emit -e tcp://127.0.0.1:5555 - < events.jsonl

\b
Before the first send, a push or dealer socket waits (up to --wait, else --timeout)
until each endpoint it connects to has a peer, so that several services share a run.
PAYLOAD '-' reads JSON lines from stdin: a bare payload (sent as EVENT) or
{"event": ..., "payload": ...}; EVENT '-' alone takes only the second form.
A bad line is reported with its number and skipped; the exit status is then 1.
Exit status: 0 all sent (acknowledged with --confirmed), 1 not, 2 usage error.
"""


@click.command(cls=SocketCommand, epilog=_EPILOG)
@verbosity_options
@click.argument("event")
@click.argument("payload", required=False)
@send_options
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Send each event this many times.",
)
@click.option(
    "--wait",
    type=Seconds(),
    metavar="SECONDS",
    help=f"Before the first send: pub pauses this long, so subscribers can join "
    f"[default: {DEFAULT_PUB_WAIT}]; push, dealer and pair wait at most this long for a "
    f"peer on each endpoint they connect to [default: --timeout].",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    metavar="N",
    help="With --confirmed: keep up to N events in flight, unconfirmed; 1 waits for each "
    f"confirmation before the next send. [default: {DEFAULT_WINDOW} when reading stdin or "
    "with --count, else 1]",
)
@click.pass_context
def emit(
    ctx: click.Context,
    /,
    event: str,
    payload: str | None,
    send: SendOptions,
    count: int,
    wait: float | None,
    window: int | None,
) -> None:
    """Send EVENT with a JSON PAYLOAD (default null) to a running service.

    PAYLOAD '-' reads one event per stdin line, so a file of events can be replayed.
    """
    items, from_stdin = _events(event, payload)
    many = from_stdin or count > 1
    listener = send.listener(many=many, window=window)
    summary = many and verbosity_of(ctx) >= 0
    send_all(listener, items, count=count, wait=wait, summary=summary)


def _events(event: str, payload: str | None) -> tuple[Iterable[Line | BadLine], bool]:
    """What to send: EVENT with PAYLOAD, or the lines of stdin (then True).

    Raises:
        click.BadParameter: A bad EVENT, PAYLOAD, or the two together.
    """
    if event == "-" and payload is not None:
        raise click.BadParameter(
            "EVENT '-' reads whole events from stdin and takes no PAYLOAD", param_hint="EVENT"
        )
    default_event = None if event == "-" else event
    if default_event is not None:
        problem = check_event(default_event)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="EVENT")
    if payload == "-" or default_event is None:
        return read_lines(sys.stdin.buffer, default_event), True
    value = None if payload is None else parse_json(payload, "PAYLOAD")
    return [Line(None, event, value)], False
