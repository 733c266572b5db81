"""``zevents serve``: receive events and print them as JSON lines, or call handlers."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import IO, Any

import click
import orjson

from zevents.cli._receiving import (
    open_and_log,
    receiving_listener,
    receiving_options,
)
from zevents.cli.app import configure_logging, silence_stdout, verbosity_of
from zevents.errors import ConfigError
from zevents.eventbus import Bus
from zevents.events import INTERNAL_PREFIX
from zevents.serializers import import_object
from zevents.service import EventService

logger = logging.getLogger(__name__)

__all__ = ["EventPrinter", "serve"]

_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _json_fallback(obj: Any) -> Any:
    # Payloads decoded by a non-JSON serializer (from a config file) may hold anything.
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)


def _is_internal(event: str, pattern: str) -> bool:
    """Whether ``event`` is one of zevents' own and ``pattern`` did not ask for those."""
    return event.startswith(INTERNAL_PREFIX) and not pattern.startswith(INTERNAL_PREFIX)


class EventPrinter:
    """A bus receiver that writes each event to a binary stream as one JSON line.

    When the reader goes away (``| head -1``), it stops the service instead of failing
    every later event.

    Args:
        service: The service to stop when the stream is closed.
        stream: A binary stream (``sys.stdout.buffer``).
        pattern: The pattern it is registered for (internal events are skipped unless
            it names them).
    """

    def __init__(self, service: EventService, stream: IO[bytes], pattern: str = "*") -> None:
        self.service = service
        self.stream = stream
        self.pattern = pattern
        self.is_closed = False

    def __call__(self, event: str, payload: Any) -> None:
        if self.is_closed or _is_internal(event, self.pattern):
            return
        line = orjson.dumps(
            {"event": event, "payload": payload}, default=_json_fallback, option=_JSON_OPTIONS
        )
        try:
            self.stream.write(line + b"\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            # ValueError: the stream itself was closed.
            self.is_closed = True
            self.service.stop()


class _Handler:
    """Calls a user handler as ``handler(event, payload)``, skipping internal events."""

    def __init__(self, spec: str, function: Callable[[str, Any], Any], pattern: str) -> None:
        self.spec = spec
        self.function = function
        self.pattern = pattern

    def __call__(self, event: str, payload: Any) -> Any:
        if _is_internal(event, self.pattern):
            return None
        return self.function(event, payload)

    def __repr__(self) -> str:
        return f"<handler {self.spec}>"


def load_handler(spec: str, pattern: str) -> _Handler:
    """Import ``module:callable`` as a handler.

    Raises:
        ConfigError: It cannot be imported, or is not callable.
    """
    function = import_object(spec, what="handler")
    if not callable(function):
        raise ConfigError(f"handler {spec!r} is {type(function).__name__}, not a callable")
    return _Handler(spec, function, pattern)


_EPILOG = """\b
Examples:
  zevents serve tcp://127.0.0.1:5555                  # print events as JSON lines
  zevents serve tcp://127.0.0.1:5555 | jq .payload
  zevents serve --handler myapp.events:on_event --pattern 'orders.*' tcp://127.0.0.1:5555
  zevents serve --connect --socket-type sub --subscribe orders. tcp://127.0.0.1:5556
  zevents serve --confirmed ipc:///tmp/zevents.sock

Several ENDPOINTs make one socket that binds (or connects) all of them.
Stops cleanly, with exit status 0, on SIGTERM or SIGINT (Ctrl-C).
"""


@click.command(epilog=_EPILOG)
@receiving_options
@click.option(
    "--handler",
    "handlers",
    multiple=True,
    metavar="MODULE:CALLABLE",
    help="Call handler(event, payload) for each event matching --pattern (repeatable). "
    "Without one, events are printed to stdout.",
)
@click.option(
    "--pattern",
    default="*",
    show_default=True,
    help="Event-name pattern for the handlers (or for printing); '*' matches any run "
    "of characters.",
)
@click.pass_context
def serve(ctx: click.Context, /, **params: Any) -> None:
    """Receive events on ENDPOINTs and print them, or pass them to handlers.

    Each event is printed to stdout as one JSON line, {"event": ..., "payload": ...},
    flushed at once; logs go to stderr.
    """
    if not params["pattern"]:
        raise click.BadParameter("the pattern is empty; use '*' for every event", ctx=ctx)
    service = EventService(Bus("zevents-serve"), poll_timeout=params["poll_timeout"])
    previous = stop_on_signals(service)
    try:
        _serve(ctx, service, **params)
    finally:
        restore_signals(previous)


def restore_signals(previous: dict[int, Any]) -> None:
    """Put back the handlers ``stop_on_signals`` replaced."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def stop_on_signals(service: EventService) -> dict[int, Any]:
    """Stop the service on SIGTERM/SIGINT from now on, not only once ``run()`` started."""

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        service.stop()

    previous: dict[int, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, on_signal)
    return previous


def _serve(
    ctx: click.Context,
    service: EventService,
    *,
    endpoints: tuple[str, ...],
    bind: bool,
    socket_type: str | None,
    prefixes: tuple[str, ...],
    handlers: tuple[str, ...],
    pattern: str,
    confirmed: bool,
    config: str | None,
    connection: str | None,
    poll_timeout: float,
) -> None:
    listener = receiving_listener(
        ctx,
        service,
        endpoints=endpoints,
        bind=bind,
        socket_type=socket_type,
        prefixes=prefixes,
        confirmed=confirmed,
        config=config,
        connection=connection,
    )
    receivers = [load_handler(spec, pattern) for spec in handlers]

    configure_logging(verbosity_of(ctx))
    printer: EventPrinter | None = None
    if receivers:
        for receiver in receivers:
            service.bus.listen(pattern, receiver)
    else:
        printer = EventPrinter(service, sys.stdout.buffer, pattern)
        service.bus.listen(pattern, printer)
    target = ", ".join(r.spec for r in receivers) if receivers else "stdout"
    open_and_log(service, listener, target)
    service.run()
    if printer is not None and printer.is_closed:
        logger.debug("stdout was closed; stopped")
        silence_stdout()
