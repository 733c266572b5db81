"""``zevents emit``: send one event, N copies, or a stream of JSON lines from stdin."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import click
import orjson

from zevents.cli._options import Seconds, given, listener_settings, parse_json, seconds_to_ms
from zevents.cli._progress import Progress, rate
from zevents.cli.app import configure_logging, verbosity_of
from zevents.config import DEFAULT_SNDTIMEO, ListenerOptions
from zevents.errors import ConfigError, DeliveryError
from zevents.eventbus import Bus
from zevents.events import CONFIRMED, PUSH_ERROR
from zevents.listener import EventListener

logger = logging.getLogger(__name__)

__all__ = ["emit", "read_lines"]

#: Socket types ``emit`` can send on (a ROUTER needs a peer address, so it is left out).
EMIT_SOCKET_TYPES = ("push", "pub", "dealer", "pair")
#: Seconds a PUB waits before its first send unless ``--wait`` says otherwise.
DEFAULT_PUB_WAIT = 0.5
# Events a user may not send: the CLI could not tell their failures from others'.
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


class _Sender:
    """Sends through a listener and keeps the ``zevents.push.error`` of a failure."""

    def __init__(self, listener: EventListener, bus: Bus) -> None:
        self.listener = listener
        self.failure: dict[str, Any] | None = None
        bus.listen(PUSH_ERROR, self._on_error)

    def _on_error(self, _event: str, payload: Any) -> None:
        self.failure = payload if isinstance(payload, dict) else {"error": str(payload)}

    def send(self, event: str, payload: Any) -> str | None:
        """Send one event; the reason it failed, or ``None``."""
        self.failure = None
        if self.listener(event, payload):
            return None
        failure: dict[str, Any] = self.failure or {}
        error = str(failure.get("error", "not sent"))
        kind, sep, text = error.partition(": ")
        reason = f"{text} ({kind})" if sep and kind.isidentifier() else error
        if self.listener.options.confirmed and "no peer took the event" in error:
            # A confirmed DEALER cannot pair with a plain PULL service: say so.
            reason += "; is the service running with --confirmed?"
        return reason


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
@click.option(
    "-e",
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="ENDPOINT",
    help="Endpoint to send to, e.g. tcp://127.0.0.1:5555 (repeatable).",
)
@click.option(
    "--connect/--bind",
    "connect",
    default=True,
    show_default=True,
    help="Connect to the endpoints (default), or bind them.",
)
@click.option(
    "--socket-type",
    type=click.Choice(EMIT_SOCKET_TYPES, case_sensitive=False),
    help="Socket type. [default: push; dealer with --confirmed]",
)
@click.option(
    "--confirmed",
    is_flag=True,
    help="Wait for each event's acknowledgement (serve --confirmed).",
)
@click.option(
    "--timeout",
    type=Seconds(positive=True),
    default=DEFAULT_SNDTIMEO / 1000,
    show_default=True,
    metavar="SECONDS",
    help="How long a send may wait for a peer, an acknowledgement, and the final flush.",
)
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
@click.option("--config", metavar="FILE", help="Config file holding --connection.")
@click.option(
    "--connection",
    metavar="NAME",
    help="Take the socket options from this connection of the config file; "
    "command-line options win.",
)
@click.pass_context
def emit(
    ctx: click.Context,
    event: str,
    payload: str | None,
    endpoints: tuple[str, ...],
    connect: bool,
    socket_type: str | None,
    confirmed: bool,
    timeout: float,
    count: int,
    wait: float | None,
    config: str | None,
    connection: str | None,
) -> None:
    """Send EVENT with a JSON PAYLOAD (default null) to a running service.

    PAYLOAD '-' reads one event per stdin line, so a file of events can be replayed.
    """
    stdin_mode = payload == "-" or (event == "-" and payload is None)
    if event == "-" and payload is not None:
        raise click.BadParameter(
            "EVENT '-' reads whole events from stdin and takes no PAYLOAD", param_hint="EVENT"
        )
    default_event = None if event == "-" else event
    if default_event is not None:
        problem = _check_event(default_event)
        if problem is not None:
            raise click.BadParameter(problem, param_hint="EVENT")
    items: Iterable[Line | BadLine]
    if stdin_mode:
        items = read_lines(_stdin(), default_event)
    else:
        value = None if payload is None else parse_json(payload, "PAYLOAD")
        items = [Line(None, event, value)]

    overrides: dict[str, Any] = {}
    if socket_type is not None:
        overrides["socket_type"] = socket_type.lower()
    if given(ctx, "confirmed"):
        overrides["confirmed"] = confirmed
    if given(ctx, "timeout"):
        millis = seconds_to_ms(timeout)
        overrides.update(sndtimeo=millis, rcvtimeo=millis, linger=millis)
    settings = listener_settings(
        ctx,
        endpoints=endpoints,
        bind=not connect,
        config=config,
        connection=connection,
        overrides=overrides,
    )
    options = ListenerOptions.build(settings)
    sending = options.sending_type()
    if sending not in EMIT_SOCKET_TYPES:
        raise ConfigError(
            f"socket_type {sending!r} cannot send events here; "
            f"use one of {', '.join(EMIT_SOCKET_TYPES)}"
        )
    pause = wait if wait is not None else (DEFAULT_PUB_WAIT if sending == "pub" else 0.0)

    verbosity = verbosity_of(ctx)
    configure_logging(verbosity)
    bus = Bus("zevents-emit")
    listener = EventListener(settings, bus=bus)
    _send_all(
        listener,
        bus,
        items,
        count=count,
        pause=pause,
        summary=(stdin_mode or count > 1) and verbosity >= 0,
        quiet_listener=verbosity <= 0,
    )


def _stdin() -> IO[bytes]:
    return sys.stdin.buffer


def _send_all(
    listener: EventListener,
    bus: Bus,
    items: Iterable[Line | BadLine],
    *,
    count: int,
    pause: float,
    summary: bool,
    quiet_listener: bool,
) -> None:
    """Send every item; report bad lines, the first failure, and a summary.

    Raises:
        EndpointError: The socket cannot bind or connect.
        DeliveryError: An event was not delivered (sending stopped there).
        click.ClickException: Some lines were bad (exit status 1).
    """
    endpoint = listener.options.endpoints
    sender = _Sender(listener, bus)
    progress = Progress(sys.stderr, enabled=None if summary else False)
    sent = bad = 0
    failed: tuple[Line, str] | None = None
    interrupted = False
    listener.socket  # noqa: B018 - bind/connect now, so --wait counts from here
    if pause > 0:
        time.sleep(pause)
    progress.started = time.monotonic()
    listener_logger = logging.getLogger("zevents.listener")
    saved_level = listener_logger.level
    if quiet_listener:
        # Failures are reported below, once, naming the endpoint.
        listener_logger.setLevel(logging.ERROR)
    try:
        for item in items:
            if isinstance(item, BadLine):
                bad += 1
                progress.clear()
                click.echo(f"zevents emit: line {item.number}: {item.reason}; skipped", err=True)
                continue
            for _ in range(count):
                reason = sender.send(item.event, item.payload)
                if reason is not None:
                    failed = (item, reason)
                    break
                sent += 1
                progress.update(sent)
            if failed is not None:
                break
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        elapsed = progress.elapsed
        progress.clear()
        listener.close(0 if interrupted else None)
        listener_logger.setLevel(saved_level)
        if summary:
            text = f"zevents emit: sent {sent:,} event{'s' if sent != 1 else ''} to {endpoint}"
            text += f" in {elapsed:.2f} s ({rate(sent, elapsed)})"
            if bad:
                text += f"; {bad} bad line{'s' if bad != 1 else ''} skipped"
            if interrupted:
                text += "; interrupted"
            click.echo(text, err=True)
    if failed is not None:
        item, reason = failed
        where = f" (line {item.number})" if item.number is not None else ""
        message = f"could not deliver {item.event!r}{where} to {endpoint}: {reason}"
        if item.number is not None:
            message += f"; stopped there (resume with: tail -n +{item.number})"
        raise DeliveryError(message, event=item.event, endpoint=endpoint)
    if bad:
        raise click.ClickException(
            f"{bad} bad line{'s' if bad != 1 else ''} skipped (see above); the rest was sent"
        )
