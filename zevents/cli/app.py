"""The ``zevents`` click group, its commands, and the one place errors become exit codes.

Exit codes:

* 0: success (``serve`` and ``bridge`` also exit 0 when stopped by SIGTERM or SIGINT).
* 1: an event was not delivered (or, with ``--confirmed``, not acknowledged, or
  delivered and its remote handler failed), or some stdin lines of ``emit -`` were not
  sent.
* 1 also: Redis cannot be reached (``bridge`` when it starts, ``worker``, ``queue``).
* 2: a usage error: a bad option or argument, a bad config file or connection, an
  endpoint that cannot be bound or connected or whose host cannot be resolved, a
  handler that cannot be imported, a queue option the queue does not take, or the
  ``redis`` extra missing.
* 130: interrupted by Ctrl-C (``emit``).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from zevents.cli._logging import log_to_stderr
from zevents.cli._output import silence_stdout
from zevents.cli.bridge import bridge
from zevents.cli.demo import demo
from zevents.cli.emit import emit
from zevents.cli.history import HISTORY_COMMANDS
from zevents.cli.keys import keys
from zevents.cli.listing import list_events
from zevents.cli.queue import list_queues, queue
from zevents.cli.serve import serve
from zevents.cli.version import version
from zevents.cli.worker import worker
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
    "ZeventsGroup",
    "cli",
    "exit_code_for",
    "main",
]

#: Everything worked.
EXIT_OK = 0
#: An event was not delivered or not acknowledged.
EXIT_DELIVERY = 1
#: The command line (or the config it names) is wrong.
EXIT_USAGE = 2
#: Interrupted from the keyboard (128 + SIGINT).
EXIT_INTERRUPTED = 130

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


class ZeventsGroup(click.Group):
    """A click group whose ``main`` maps every error to one stderr line and an exit code.

    Click's own standalone mode prints the usage text with a usage error; a terminal
    user gets a single ``Error: ...`` line instead, saying what to fix.
    """

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


@click.group(
    cls=ZeventsGroup,
    commands=[serve, emit, bridge, worker, queue, list_events, keys, version],
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
    log_to_stderr(ctx, verbose - quiet)


cli.add_command(demo)
# The queue's history commands (purge, archive, ...) live in a module of their own.
for _command in HISTORY_COMMANDS:
    queue.add_command(_command)
# ``zevents queues``: ``zevents queue list`` by a shorter name (as ``rq info``).
cli.add_command(list_queues, "queues")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point: run ``zevents`` and exit with its status."""
    sys.exit(cli.main(args=argv, prog_name="zevents", standalone_mode=False))
