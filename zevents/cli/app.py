"""The ``zevents`` click group, logging set-up, and the one place errors become exit codes.

Exit codes:

* 0: success (``serve`` also exits 0 when stopped by SIGTERM or SIGINT).
* 1: an event was not delivered (or, with ``--confirmed``, not acknowledged), or some
  stdin lines of ``emit -`` were not sent.
* 1 also: Redis cannot be reached (``bridge``, ``worker``, ``queue``).
* 2: a usage error: a bad option or argument, a bad config file or connection, an
  endpoint that cannot be bound or connected, a handler that cannot be imported, a
  queue option Redis rejects, or the ``redis`` extra missing.
* 130: interrupted by Ctrl-C (``emit``).
"""

from __future__ import annotations

import errno
import logging
import os
import platform
import sys
from collections.abc import Sequence
from typing import Any, Literal, NoReturn, overload

import click
import zmq

from zevents.errors import (
    ConfigError,
    DeliveryError,
    EndpointError,
    MissingExtraError,
    QueueError,
    QueueUnavailable,
    ZeventsError,
)

__all__ = [
    "EXIT_DELIVERY",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "cli",
    "configure_logging",
    "exit_code_for",
    "main",
    "silence_stdout",
    "verbosity_of",
]

#: Everything worked.
EXIT_OK = 0
#: An event was not delivered or not acknowledged.
EXIT_DELIVERY = 1
#: The command line (or the config it names) is wrong.
EXIT_USAGE = 2
#: Interrupted from the keyboard (128 + SIGINT).
EXIT_INTERRUPTED = 130

_CLI_HANDLER = "zevents.cli"
# Raised (click 8.2+) for a bare ``zevents``: its message is the whole help text.
_NO_ARGS_IS_HELP: tuple[type[click.ClickException], ...] = tuple(
    getattr(click.exceptions, name)
    for name in ("NoArgsIsHelpError",)
    if hasattr(click.exceptions, name)
)


def _one_line(text: str) -> str:
    """Collapse a message to one line, so a user sees exactly one line per error."""
    return " ".join(text.split())


def exit_code_for(error: BaseException) -> int:
    """The exit status for an error that ends a command."""
    if isinstance(error, click.ClickException):
        return error.exit_code
    if isinstance(error, QueueUnavailable):
        return EXIT_DELIVERY
    if isinstance(error, (ConfigError, EndpointError, QueueError, MissingExtraError)):
        return EXIT_USAGE
    if isinstance(error, DeliveryError):
        return EXIT_DELIVERY
    if isinstance(error, (KeyboardInterrupt, click.Abort)):
        return EXIT_INTERRUPTED
    return EXIT_DELIVERY


def _message_for(error: BaseException) -> str:
    if isinstance(error, click.ClickException):
        text = error.format_message()
    elif isinstance(error, DeliveryError):
        text = str(error)
        if error.endpoint and error.endpoint not in text:
            text = f"{text} (endpoint {error.endpoint})"
    else:
        text = str(error) or type(error).__name__
    return "Error: " + _one_line(text)


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class ZeventsGroup(click.Group):
    """A click group whose ``main`` maps every error to one stderr line and an exit code.

    Click's own standalone mode prints the usage text with a usage error; a terminal
    user gets a single ``Error: ...`` line instead, saying what to fix.
    """

    @overload
    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: Literal[True] = True,
        **extra: Any,
    ) -> NoReturn: ...

    @overload
    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = ...,
        **extra: Any,
    ) -> Any: ...

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exit with the status of its outcome.

        With ``standalone_mode=False`` the exit status is returned instead.
        """
        code = EXIT_OK
        try:
            result = super().main(
                args,
                prog_name or "zevents",
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            if isinstance(result, int) and not isinstance(result, bool):
                code = result
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except (KeyboardInterrupt, click.Abort) as exc:
            click.echo("Interrupted.", err=True)
            code = exit_code_for(exc)
        except BrokenPipeError:
            # The reader went away (``| head``): nothing left to say to anyone.
            silence_stdout()
            code = EXIT_OK
        except (click.ClickException, ZeventsError) as exc:
            if isinstance(exc, _NO_ARGS_IS_HELP):
                exc.show()  # the help text itself, as click prints it
            else:
                click.echo(_message_for(exc), err=True)
            code = exit_code_for(exc)
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            silence_stdout()
            code = EXIT_OK
        if not standalone_mode:
            return code
        sys.exit(code)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    def __init__(self, verbose: bool) -> None:
        super().__init__(sys.stderr)
        self.name = _CLI_HANDLER
        self.verbose = verbose

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        if not self.verbose and record.exc_info:
            # A receiver's traceback is for -v; the message already names the error.
            record = logging.makeLogRecord(record.__dict__)
            record.exc_info = None
            record.exc_text = None
        super().emit(record)


def configure_logging(verbosity: int) -> None:
    """Send log records to stderr at a level chosen by ``-v``/``-q``.

    Args:
        verbosity: 0 is INFO; each ``-v`` adds one (DEBUG, with tracebacks), each
            ``-q`` takes one away (WARNING, then ERROR).
    """
    level = {1: logging.DEBUG, 0: logging.INFO, -1: logging.WARNING}.get(
        verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.name == _CLI_HANDLER:
            root.removeHandler(handler)
    handler = _StderrHandler(verbose=verbosity > 0)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root.addHandler(handler)
    root.setLevel(level)


def verbosity_of(ctx: click.Context) -> int:
    """The ``-v``/``-q`` balance given to the group."""
    root = ctx.find_root()
    obj = root.obj if isinstance(root.obj, dict) else {}
    value = obj.get("verbosity", 0)
    return value if isinstance(value, int) else 0


@click.group(
    cls=ZeventsGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Example (two terminals):
  zevents serve tcp://127.0.0.1:5555
  zevents emit -e tcp://127.0.0.1:5555 orders.created '{"id": 1}'

Exit status: 0 ok, 1 delivery failed, 2 usage error, 130 interrupted.
""",
)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-v: debug).")
@click.option("-q", "--quiet", count=True, help="Less logging on stderr (-q: warnings only).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int) -> None:
    """zevents: send, watch and serve ZeroMQ events from a terminal.

    Logs go to stderr; stdout carries only event lines.
    """
    ctx.obj = {"verbosity": verbose - quiet}


@cli.command()
def version() -> None:
    """Print the versions of zevents, pyzmq, libzmq and Python.

    \b
    Example:
      zevents version
    """
    from zevents import __version__

    click.echo(
        f"zevents {__version__} (pyzmq {zmq.pyzmq_version()}, libzmq {zmq.zmq_version()}, "
        f"Python {platform.python_version()})"
    )


def _register_commands() -> None:
    from zevents.cli.emit import emit
    from zevents.cli.queues import bridge, queue, worker
    from zevents.cli.serve import serve

    cli.add_command(serve)
    cli.add_command(emit)
    cli.add_command(bridge)
    cli.add_command(worker)
    cli.add_command(queue)


_register_commands()


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point: run ``zevents`` and exit with its status."""
    cli.main(args=argv, prog_name="zevents")
