"""``zevents serve``: receive events and print them as JSON lines, or call handlers."""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

import click

from zevents.cli._handlers import Handler, handler_option, is_internal, load_handler
from zevents.cli._options import verbosity_options
from zevents.cli._output import json_line, silence_stdout
from zevents.cli._receiving import (
    ReceiveOptions,
    receive_options,
    start_receiving,
    stopping_service,
)
from zevents.cli._security import SocketCommand
from zevents.service import EventService

logger = logging.getLogger(__name__)

__all__ = ["EventPrinter", "serve"]


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
        if self.is_closed or is_internal(event, self.pattern):
            return
        line = json_line({"event": event, "payload": payload})
        try:
            self.stream.write(line)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            # ValueError: the stream itself was closed.
            self.is_closed = True
            self.service.stop()


_EPILOG = """\b
Examples:
  zevents serve tcp://127.0.0.1:5555                  # print events as JSON lines
  zevents serve tcp://127.0.0.1:5555 | jq .payload
  zevents serve --handler myapp.events:on_event --pattern 'orders.*' tcp://127.0.0.1:5555
  zevents serve --subscribe orders. --connect tcp://127.0.0.1:5556
  zevents serve --confirmed ipc:///tmp/zevents.sock
  zevents serve ipc:///tmp/local.sock --connect tcp://10.0.0.2:5557

Several endpoints make one socket: it binds each ENDPOINT and --bind, and connects to
each --connect.
Stops cleanly, with exit status 0, on SIGTERM or SIGINT (Ctrl-C).
"""


@click.command(cls=SocketCommand, epilog=_EPILOG)
@verbosity_options
@receive_options
@handler_option(
    "Call handler(event, payload) for each event matching --pattern (repeatable). "
    "Without one, events are printed to stdout."
)
@click.option(
    "--pattern",
    default="*",
    show_default=True,
    help="Event-name pattern for the handlers (or for printing); '*' matches any run "
    "of characters.",
)
def serve(receive: ReceiveOptions, handlers: tuple[str, ...], pattern: str) -> None:
    """Receive events on ENDPOINTs and print them, or pass them to handlers.

    Each event is printed to stdout as one JSON line, {"event": ..., "payload": ...},
    flushed at once; logs go to stderr.
    """
    if not pattern:
        raise click.BadParameter("the pattern is empty; use '*' for every event")
    with stopping_service("zevents-serve", receive) as service:
        socket = receive.receiving_socket()
        receivers = [load_handler(spec, pattern) for spec in handlers]
        printer = _deliver_to(service, receivers, pattern)
        where = start_receiving(service, socket)
        target = ", ".join(r.spec for r in receivers) if receivers else "stdout"
        logger.info("receiving on %s -> %s", where, target)
        service.run()
    if printer is not None and printer.is_closed:
        logger.debug("stdout was closed; stopped")
        silence_stdout()


def _deliver_to(
    service: EventService, receivers: list[Handler], pattern: str
) -> EventPrinter | None:
    """Register the handlers for ``pattern``, or, with none, a printer to stdout."""
    for receiver in receivers:
        service.bus.listen(pattern, receiver)
    if receivers:
        return None
    printer = EventPrinter(service, sys.stdout.buffer, pattern)
    service.bus.listen(pattern, printer)
    return printer
