"""Log records to stderr for the command line, at the level ``-v``/``-q`` chose."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

import click

__all__ = ["log_to_stderr", "verbosity_of"]

# The handler's name, so that set-up replaces its own handler and no other.
_HANDLER_NAME = "zevents.cli"
# Where the group keeps the -v/-q balance for its commands (click's meta is namespaced).
_VERBOSITY = "zevents.verbosity"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_DATE_FORMAT = "%H:%M:%S"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self, verbose: bool) -> None:
        super().__init__(sys.stderr)
        self.name = _HANDLER_NAME
        self.verbose = verbose

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        if not self.verbose and record.exc_info:
            # A receiver's traceback is for -v; the message already names the error.
            record = logging.makeLogRecord(record.__dict__)
            record.exc_info = None
            record.exc_text = None
        super().emit(record)


def _level(verbosity: int) -> int:
    """0 is INFO; each ``-v`` adds one (DEBUG), each ``-q`` takes one away (WARNING, ERROR)."""
    if verbosity > 0:
        return logging.DEBUG
    return {0: logging.INFO, -1: logging.WARNING}.get(verbosity, logging.ERROR)


@contextlib.contextmanager
def _stderr_logging(verbosity: int) -> Iterator[None]:
    """Send log records to stderr while the block runs; then put the root logger back."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.name == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = _StderrHandler(verbose=verbosity > 0)
    handler.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
    saved_level = root.level
    root.addHandler(handler)
    root.setLevel(_level(verbosity))
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_level)


def log_to_stderr(ctx: click.Context, verbosity: int) -> None:
    """Log to stderr at ``verbosity`` until ``ctx`` closes (the command has finished).

    Args:
        ctx: The group's context; its commands read the verbosity with ``verbosity_of``.
        verbosity: The ``-v`` count minus the ``-q`` count; tracebacks of failing
            handlers are shown from 1 up.
    """
    ctx.meta[_VERBOSITY] = verbosity
    ctx.with_resource(_stderr_logging(verbosity))


def verbosity_of(ctx: click.Context) -> int:
    """The ``-v``/``-q`` balance given to the group (0 when a command runs alone)."""
    value = ctx.meta.get(_VERBOSITY, 0)
    return value if isinstance(value, int) else 0
