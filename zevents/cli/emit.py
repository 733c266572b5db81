"""``zevents emit``: send one event, N copies, or a stream of JSON lines from stdin."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import click
import orjson

from zevents.cli._logging import verbosity_of
from zevents.cli._options import (
    Seconds,
    SocketOptions,
    connection_options,
    given,
    option_group,
    parse_json,
    seconds_option,
    seconds_to_ms,
    socket_type_option,
)
from zevents.cli._progress import Progress, rate
from zevents.config import DEFAULT_SNDTIMEO
from zevents.errors import ConfigError, DeliveryError, DeliveryTimeout, EncodeError
from zevents.events import CONFIRMED, PUSH_ERROR
from zevents.listener import EventListener

__all__ = ["BadLine", "Line", "SendOptions", "emit", "read_lines"]

#: Socket types ``emit`` can send on (a ROUTER needs a peer address, so it is left out).
EMIT_SOCKET_TYPES = ("push", "pub", "dealer", "pair")
#: Seconds a PUB waits before its first send unless ``--wait`` says otherwise.
DEFAULT_PUB_WAIT = 0.5
# Names zevents uses itself (a failed send, a wire acknowledgement): sent as events,
# they would be taken for zevents' own.
_RESERVED = frozenset({PUSH_ERROR, CONFIRMED})


@dataclass(frozen=True)
class Line:
    """One event to send; ``number`` is its stdin line number (``None`` for arguments)."""

    number: int | None
    event: str
    payload: Any


@dataclass(frozen=True)
class BadLine:
    """A stdin line that could not be turned into an event, and why."""

    number: int
    reason: str


def _check_event(event: object) -> str | None:
    """Why ``event`` cannot be sent, or ``None`` when it can."""
    if not isinstance(event, str) or not event:
        return "the event name must be a non-empty string"
    if event in _RESERVED:
        return f"the event name {event!r} is reserved by zevents"
    return None


def _parse_line(number: int, raw: bytes, default_event: str | None) -> Line | BadLine:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return BadLine(number, f"not JSON ({exc})")
    if isinstance(value, dict) and "event" in value and set(value) <= {"event", "payload"}:
        problem = _check_event(value["event"])
        if problem is not None:
            return BadLine(number, problem)
        return Line(number, value["event"], value.get("payload"))
    if default_event is None:
        return BadLine(
            number, 'not {"event": ..., "payload": ...}, and no EVENT was given for payloads'
        )
    return Line(number, default_event, value)


def read_lines(stream: Iterable[bytes], default_event: str | None) -> Iterator[Line | BadLine]:
    """Events from JSON lines, lazily; blank lines are skipped.

    Each line is either ``{"event": NAME, "payload": ...}`` (exactly those keys, the
    payload optional) or a bare payload for ``default_event``.
    """
    for number, raw in enumerate(stream, start=1):
        if raw.strip():
            yield _parse_line(number, raw, default_event)


@dataclass(frozen=True)
class SendOptions(SocketOptions):
    """The sending socket ``emit`` was asked for, as given on its command line.

    Attributes:
        timeout: ``--timeout`` seconds; ``None`` when not given.
    """

    bind: bool = False
    timeout: float | None = None

    @classmethod
    def from_params(cls, ctx: click.Context, params: dict[str, Any]) -> SendOptions:
        """Take the options ``send_options`` added out of a command's parameters."""
        timeout = params.pop("timeout")
        return cls(
            **cls.take_params(ctx, params),
            bind=not params.pop("connect"),
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
        """The listener to send with (its socket is not opened yet).

        Raises:
            click.UsageError: No endpoint, or ``--config`` without ``--connection``.
            ConfigError: Bad options, or a socket type ``emit`` cannot send on.
        """
        listener = EventListener(self.settings())
        sending = listener.options.sending_type()
        if sending not in EMIT_SOCKET_TYPES:
            raise ConfigError(
                f"socket_type {sending!r} cannot send events here; "
                f"use one of {', '.join(EMIT_SOCKET_TYPES)}"
            )
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
            help="Endpoint to send to, e.g. tcp://127.0.0.1:5555 (repeatable).",
        ),
        click.option(
            "--connect/--bind",
            "connect",
            default=True,
            show_default=True,
            help="Connect to the endpoints (default), or bind them.",
        ),
        socket_type_option(EMIT_SOCKET_TYPES, "push; dealer with --confirmed"),
        click.option(
            "--confirmed",
            is_flag=True,
            help="Wait for each event's acknowledgement (serve --confirmed).",
        ),
        seconds_option(
            "--timeout",
            default=DEFAULT_SNDTIMEO / 1000,
            positive=True,
            help="How long a send may wait for a peer, an acknowledgement, and the final flush.",
        ),
        connection_options,
    ],
)


_EPILOG = """\b
Examples:
  zevents emit -e tcp://127.0.0.1:5555 orders.created '{"id": 1}'
  zevents emit -e tcp://127.0.0.1:5555 --confirmed --timeout 5 orders.created '{"id": 1}'
  zevents emit -e tcp://127.0.0.1:5555 --count 1000 ping
  zevents emit -e tcp://127.0.0.1:5555 orders.created - < payloads.jsonl
  zevents emit -e tcp://127.0.0.1:5555 - < events.jsonl

\b
PAYLOAD '-' reads JSON lines from stdin: a bare payload (sent as EVENT) or
{"event": ..., "payload": ...}; EVENT '-' alone takes only the second form.
A bad line is reported with its number and skipped; the exit status is then 1.
Exit status: 0 all sent (acknowledged with --confirmed), 1 not, 2 usage error.
"""


@click.command(epilog=_EPILOG)
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
    help=f"Pause after binding/connecting, before the first send, so subscribers can "
    f"join. [default: {DEFAULT_PUB_WAIT} for pub, else 0]",
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
    is_pub = listener.options.sending_type() == "pub"
    pause = wait if wait is not None else (DEFAULT_PUB_WAIT if is_pub else 0.0)
    summary = (from_stdin or count > 1) and verbosity_of(ctx) >= 0
    _send_all(listener, items, count=count, pause=pause, summary=summary)


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
        problem = _check_event(default_event)
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


def _send_all(
    listener: EventListener,
    items: Iterable[Line | BadLine],
    *,
    count: int,
    pause: float,
    summary: bool,
) -> None:
    """Send every item; report bad lines, the first failure, and a summary.

    Raises:
        EndpointError: The socket cannot bind or connect.
        DeliveryError: An event was not delivered (sending stopped there).
        click.ClickException: Some lines were bad (exit status 1).
    """
    listener.socket  # noqa: B018 - bind/connect now, so --wait counts from here
    if pause > 0:
        time.sleep(pause)
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
        raise click.ClickException(
            f"{tally.bad} bad line{_s(tally.bad)} skipped (see above); the rest was sent"
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
    reason = f"{error} ({type(error).__name__})"
    if isinstance(error, DeliveryTimeout) and not error.sent and listener.options.confirmed:
        # A confirmed DEALER cannot pair with a plain PULL service: say so.
        reason += "; is the service running with --confirmed?"
    where = f" (line {line.number})" if line.number is not None else ""
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
