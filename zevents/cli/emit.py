"""``zevents emit``: send one event, N copies, or a stream of JSON lines from stdin."""

from __future__ import annotations

import sys
import time
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
from zevents.cli._progress import Progress, rate
from zevents.cli._security import SocketCommand, confirmed_options, curve_options
from zevents.config import DEFAULT_SNDTIMEO
from zevents.errors import ConfigError, DeliveryError, DeliveryTimeout, EncodeError, RemoteError
from zevents.listener import EventListener

__all__ = ["BadLine", "Line", "SendOptions", "emit", "read_lines"]

#: Socket types ``emit`` can send on (a ROUTER needs a peer address, so it is left out).
EMIT_SOCKET_TYPES = ("push", "pub", "dealer", "pair")
#: Seconds a PUB waits before its first send unless ``--wait`` says otherwise.
DEFAULT_PUB_WAIT = 0.5


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

    def listener(self) -> EventListener:
        """The listener to send with (its socket is not opened yet); the hosts it
        connects to are resolved now.

        Raises:
            click.UsageError: No endpoint, or ``--config`` without ``--connection``.
            ConfigError: Bad options, or a socket type ``emit`` cannot send on.
            EndpointError: A host of a connect endpoint cannot be resolved.
        """
        listener = EventListener(self.settings())
        sending = listener.options.sending_type()
        if sending not in EMIT_SOCKET_TYPES:
            raise ConfigError(
                f"socket_type {sending!r} cannot send events here; "
                f"use one of {', '.join(EMIT_SOCKET_TYPES)}"
            )
        check_hosts(listener.options.connect, send_timeout(listener))
        return listener


def send_timeout(listener: EventListener) -> float:
    """Seconds a send of ``listener`` may wait for a peer (``sndtimeo``; -1, infinite,
    counts as the default here, so that no wait before sending is endless)."""
    millis = listener.options.sndtimeo
    return (millis if millis >= 0 else DEFAULT_SNDTIMEO) / 1000


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
@click.pass_context
def emit(
    ctx: click.Context,
    /,
    event: str,
    payload: str | None,
    send: SendOptions,
    count: int,
    wait: float | None,
) -> None:
    """Send EVENT with a JSON PAYLOAD (default null) to a running service.

    PAYLOAD '-' reads one event per stdin line, so a file of events can be replayed.
    """
    items, from_stdin = _events(event, payload)
    listener = send.listener()
    summary = (from_stdin or count > 1) and verbosity_of(ctx) >= 0
    _send_all(listener, items, count=count, wait=wait, summary=summary)


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


@dataclass
class _Tally:
    """What a run did so far, for its summary."""

    sent: int = 0
    bad: int = 0
    interrupted: bool = False


@dataclass(frozen=True)
class _Failure:
    """The event that was not delivered, and the error that says why."""

    line: Line
    error: DeliveryError | EncodeError


def _get_ready(listener: EventListener, wait: float | None) -> None:
    """Open the socket, then wait for the receivers before the first send.

    A PUB pauses for its subscribers (it cannot tell when they have joined). Any other
    socket waits, at most ``wait`` (default: the send timeout), until each endpoint it
    connects to has a peer: sending at once, a short run would all go to the first
    peer whose connection completed.

    Raises:
        EndpointError: The socket cannot bind or connect.
    """
    if listener.options.sending_type() == "pub":
        listener.socket  # noqa: B018 - bind/connect now, so --wait counts from here
        pause = DEFAULT_PUB_WAIT if wait is None else wait
        if pause > 0:
            time.sleep(pause)
        return
    bound = send_timeout(listener) if wait is None else wait
    if listener.options.connect and bound > 0:
        listener.wait_for_peers(bound)
    else:
        listener.socket  # noqa: B018 - bind/connect now: a bad endpoint fails here


def _send_all(
    listener: EventListener,
    items: Iterable[Line | BadLine],
    *,
    count: int,
    wait: float | None,
    summary: bool,
) -> None:
    """Send every item; report bad lines, the first failure, and a summary.

    Raises:
        EndpointError: The socket cannot bind or connect.
        DeliveryError: An event was not delivered, or its remote handler failed
            (sending stopped there).
        click.ClickException: Some lines were bad (exit status 1).
    """
    _get_ready(listener, wait)
    progress = Progress(sys.stderr, enabled=None if summary else False)
    tally = _Tally()
    try:
        failure = _send_items(listener, items, count, tally, progress)
    except KeyboardInterrupt:
        tally.interrupted = True
        raise
    finally:
        elapsed = progress.elapsed
        progress.clear()
        listener.close(0 if tally.interrupted else None)
        if summary:
            click.echo(_summary(tally, listener.options.endpoints, elapsed), err=True)
    if failure is not None:
        raise _undelivered(failure, listener) from failure.error
    if tally.bad:
        rest = "the rest was sent" if tally.sent else "no event was sent"
        raise click.ClickException(
            f"{tally.bad} bad line{_s(tally.bad)} skipped (see above); {rest}"
        )


def _send_items(
    listener: EventListener,
    items: Iterable[Line | BadLine],
    count: int,
    tally: _Tally,
    progress: Progress,
) -> _Failure | None:
    """Send each line ``count`` times, skipping bad lines; stop at the first failure."""
    for item in items:
        if isinstance(item, BadLine):
            tally.bad += 1
            progress.clear()
            click.echo(f"zevents emit: line {item.number}: {item.reason}; skipped", err=True)
            continue
        for _ in range(count):
            try:
                listener.send(item.event, item.payload)
            except (DeliveryError, EncodeError) as exc:
                return _Failure(item, exc)
            tally.sent += 1
            progress.update(tally.sent)
    return None


def _undelivered(failure: _Failure, listener: EventListener) -> DeliveryError:
    """The error that ends the run: the event, its line, the endpoint and the reason."""
    line, error = failure.line, failure.error
    endpoint = listener.options.endpoints
    where = f" (line {line.number})" if line.number is not None else ""
    if isinstance(error, RemoteError):
        # Delivered: a resend would run the handler again, so the next line resumes.
        message = (
            f"{line.event!r}{where} was sent to {endpoint} and delivered; "
            f"the remote handler failed: {error}"
        )
        if line.number is not None:
            message += f"; stopped there (resume with: tail -n +{line.number + 1})"
        return RemoteError(message, event=line.event, endpoint=endpoint)
    reason = f"{error} ({type(error).__name__})"
    if isinstance(error, DeliveryTimeout) and not error.sent and listener.options.confirmed:
        # A confirmed DEALER cannot pair with a plain PULL service: say so.
        reason += "; is the service running with --confirmed?"
    message = f"could not deliver {line.event!r}{where} to {endpoint}: {reason}"
    if line.number is not None:
        message += f"; stopped there (resume with: tail -n +{line.number})"
    return DeliveryError(message, event=line.event, endpoint=endpoint)


def _summary(tally: _Tally, endpoint: str, elapsed: float) -> str:
    """The last line of a run: what was sent where, how fast, and what was not."""
    text = f"zevents emit: sent {tally.sent:,} event{_s(tally.sent)} to {endpoint}"
    text += f" in {elapsed:.2f} s ({rate(tally.sent, elapsed)})"
    if tally.bad:
        text += f"; {tally.bad} bad line{_s(tally.bad)} skipped"
    if tally.interrupted:
        text += "; interrupted"
    return text


def _s(count: int) -> str:
    """The plural ending for ``count`` things."""
    return "" if count == 1 else "s"
