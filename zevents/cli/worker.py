"""``zevents worker``: take messages from Redis queues and call handlers with them."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from zevents._signals import installed_signal_handlers, stop_handlers
from zevents.cli._durations import Duration
from zevents.cli._handlers import handler_option, load_handler
from zevents.cli._logging import verbosity_of
from zevents.cli._options import seconds_option
from zevents.cli._queues import QueueOptions, queue_options
from zevents.cli._supervisor import (
    DEFAULT_STOP_TIMEOUT,
    STATUS_FD_OPTION,
    Supervisor,
    replay_options,
)
from zevents.cli._worker_status import MessageLog, Tally, TallyReporter, status_line
from zevents.errors import ConfigError
from zevents.eventbus import Bus
from zevents.redis.defaults import (
    DEFAULT_BACKOFF,
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
    DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_ATTEMPTS,
)
from zevents.redis.retry import BACKOFFS, RetryPolicy, select_priorities

if TYPE_CHECKING:
    from zevents.redis import RedisQueue, Worker

logger = logging.getLogger(__name__)

__all__ = ["worker"]

# The parameters of Worker, RetryPolicy and select_priorities (``ConfigError.option``)
# that this command takes, and the name of the click parameter for each.
_OPTION_PARAMS = {
    "serve": "serve",
    "keep_alive": "keep_alive",
    "max_messages": "max_messages",
    "max_attempts": "max_attempts",
    "backoff": "backoff",
    "base": "backoff_base",
    "cap": "backoff_cap",
}


@contextlib.contextmanager
def _options_as_flags(ctx: click.Context) -> Iterator[None]:
    """Report a ``ConfigError`` about a worker option as a bad value of its flag.

    An error naming no option of this command goes on as it is (one ``Error:`` line).
    """
    try:
        yield
    except ConfigError as exc:
        name = _OPTION_PARAMS.get(exc.option or "")
        if name is None:
            raise
        param = next(p for p in ctx.command.params if p.name == name)
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


_EPILOG = """\b
Examples:
  zevents worker --queue orders --handler myapp.jobs:on_order
  zevents worker --queue jobs --driver stream --handler myapp.jobs:run --fork
  zevents worker --queue mail --handler myapp.mail:send --concurrency 4 --max-restarts 10
  zevents -v worker --queue orders --handler myapp.jobs:on_order --max-attempts 3

\b
A handler module in the working directory is found without PYTHONPATH. Redis that
cannot be reached at the start is exit status 1; later outages are waited out, with a
warning at least every 10 s. On a terminal a status line shows the counts; -v logs a
line per finished message (a failed attempt is always logged, as a warning).

\b
Stops after the message in hand, with exit status 0, on SIGTERM or SIGINT, after
--max-messages, or when `zevents queue shutdown` is run. With --concurrency, a second
SIGINT kills the worker processes at once (exit status 130).
"""


@click.command(epilog=_EPILOG)
@click.option(
    "--queue",
    "queue_names",
    required=True,
    multiple=True,
    metavar="NAME",
    help="Queue to work (repeatable; earlier queues first).",
)
@queue_options
@handler_option(
    "Call handler(event, payload) for each message matching --pattern (repeatable); "
    "MODULE is found in the working directory too.",
    required=True,
)
@click.option("--pattern", default="*", show_default=True, help="Events the handlers get.")
@click.option(
    "--serve",
    metavar="SPEC",
    help="Only these priority levels: a list (10,20) or a range (20-40, 25-, -20).",
)
@click.option(
    "--max-messages",
    type=click.IntRange(min=1),
    metavar="N",
    help="Stop after N messages (each worker process, with --concurrency).",
)
@click.option("--fork", is_flag=True, help="Run each message in a child process.")
@click.option(
    "--keep-finished",
    type=Duration(positive=True),
    metavar="DURATION",
    help="Keep a record of each finished message this long (14d, 36h, ...), for "
    "`zevents queue finished`. [default: keep none]",
)
@seconds_option(
    "--keep-alive",
    default=DEFAULT_KEEP_ALIVE,
    positive=True,
    help="Lease of a taken message, renewed while its handler runs.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    metavar="N",
    help="Attempts in all; after the last one the message goes to the failed store. "
    f"[default: the --redis connection's max_attempts, else {DEFAULT_MAX_ATTEMPTS}]",
)
@click.option(
    "--backoff",
    type=click.Choice(BACKOFFS),
    help="How the wait before a retry grows: exponential (base, 2*base, 4*base, ...) "
    f"or linear (base * attempt). [default: the connection's, else {DEFAULT_BACKOFF}]",
)
@seconds_option(
    "--backoff-base",
    help=f"Seconds of the first wait. [default: the connection's, else {DEFAULT_BACKOFF_BASE}]",
)
@seconds_option(
    "--backoff-cap",
    help=f"The longest wait, in seconds. [default: the connection's, else {DEFAULT_BACKOFF_CAP}]",
)
@click.option(
    "--concurrency",
    metavar="N",
    type=click.IntRange(min=1),
    default=1,
    help="Worker processes, run under one supervisor that restarts one that dies "
    "(after 0.5 s, doubling up to 10 s). [default: 1, with no supervisor]",
)
@click.option(
    "--max-restarts",
    type=click.IntRange(min=0),
    metavar="N",
    help="Restarts allowed in all; when one more process dies, stop the others and exit "
    "1. Alone, it supervises a single worker process. [default: no limit]",
)
@seconds_option(
    "--stop-timeout",
    default=DEFAULT_STOP_TIMEOUT,
    positive=True,
    help="Under a supervisor: how long the worker processes get to finish the message "
    "in hand when stopped, before they are killed.",
)
@click.option(
    STATUS_FD_OPTION,
    "status_fd",
    type=click.IntRange(min=0),
    hidden=True,
    help="Internal: the pipe a worker process reports its counts to its supervisor on.",
)
@click.pass_context
def worker(
    ctx: click.Context,
    /,
    queue_names: tuple[str, ...],
    queue_options: QueueOptions,
    handlers: tuple[str, ...],
    pattern: str,
    serve: str | None,
    max_messages: int | None,
    fork: bool,
    keep_finished: float | None,
    keep_alive: float,
    max_attempts: int | None,
    backoff: str | None,
    backoff_base: float | None,
    backoff_cap: float | None,
    concurrency: int,
    max_restarts: int | None,
    stop_timeout: float,
    status_fd: int | None,
) -> int:
    """Take messages from Redis queues and call handlers with them."""
    from zevents.redis import Worker

    bus = _bus_with_handlers(handlers, pattern)
    with _options_as_flags(ctx):
        # Checked before any queue is opened, so a bad option never waits for Redis;
        # a queue opened without --priorities has the one level 0.
        retry = _retry_policy(queue_options, max_attempts, backoff, backoff_base, backoff_cap)
        select_priorities(queue_options.priorities or (0,), serve)
    drawing = sys.stderr.isatty() and verbosity_of(ctx) >= 0
    if concurrency > 1 or max_restarts is not None:
        with _opened(queue_options, queue_names, keep_finished) as queues:
            _check_queues(ctx, queues, serve)
        return _supervisor(ctx, concurrency, max_restarts, stop_timeout, drawing).run()
    with _opened(queue_options, queue_names, keep_finished) as queues:
        if status_fd is None:
            # A supervised worker process waits an outage out: its supervisor checked.
            _check_queues(ctx, queues, serve)
        with _options_as_flags(ctx):
            runner = Worker(
                queues,
                bus,
                retry=retry,
                keep_alive=keep_alive,
                max_messages=max_messages,
                fork=fork,
                serve=serve,
            )
        messages = MessageLog(logger, retry.max_attempts, verbose=verbosity_of(ctx) > 0)
        messages.listen(bus)
        # before the start line: a stop signal right after it stops the worker cleanly
        # (run() installs its own again), never with the default action
        with installed_signal_handlers(stop_handlers(runner.stop)):
            names, receivers = ", ".join(queue_names), ", ".join(handlers)
            logger.info("worker %s on %s -> %s", runner.id, names, receivers)
            with _reporting(runner, messages, status_fd, drawing):
                processed = runner.run()
    logger.info("worker stopped after %d message(s)", processed)
    return 0


@contextlib.contextmanager
def _opened(
    queue_options: QueueOptions, names: tuple[str, ...], keep_finished: float | None
) -> Iterator[list[RedisQueue]]:
    """The queues, open while the block runs (no I/O yet)."""
    with contextlib.ExitStack() as opened:
        yield [
            opened.enter_context(queue_options.open(name, keep_finished=keep_finished))
            for name in names
        ]


def _retry_policy(
    queue_options: QueueOptions,
    max_attempts: int | None,
    backoff: str | None,
    base: float | None,
    cap: float | None,
) -> RetryPolicy:
    """The retry policy: the options given, over the --redis connection's settings,
    over the defaults.

    Raises:
        ConfigError: A bad value (``option`` names it), or a bad config file.
    """
    _, connection = queue_options.redis.resolve()
    policy = connection.retry if connection is not None else RetryPolicy()
    given: dict[str, Any] = {
        "max_attempts": max_attempts,
        "backoff": backoff,
        "base": base,
        "cap": cap,
    }
    return dataclasses.replace(policy, **{k: v for k, v in given.items() if v is not None})


def _check_queues(ctx: click.Context, queues: list[RedisQueue], serve: str | None) -> None:
    """Reach Redis now, so that a server that cannot be reached is exit status 1 at the
    start rather than a wait: each queue reads what it was created as, and --serve is
    checked against its levels.

    Raises:
        QueueUnavailable: Redis cannot be reached.
        ConfigError: A queue was created with another driver or levels, or --serve
            selects none of its levels.
    """
    for queue in queues:
        queue.exists()
        with _options_as_flags(ctx):
            select_priorities(queue.priorities, serve)


def _supervisor(
    ctx: click.Context,
    concurrency: int,
    max_restarts: int | None,
    stop_timeout: float,
    drawing: bool,
) -> Supervisor:
    """The supervisor of ``concurrency`` worker processes: each runs this command, with
    the user's options and verbosity, less the supervisor's own options."""
    verbosity = verbosity_of(ctx)
    flags = ["-v"] * verbosity if verbosity > 0 else ["-q"] * -verbosity
    skip = {"concurrency", "max_restarts", "stop_timeout", "status_fd"}
    command = [sys.executable, "-m", "zevents", *flags, "worker", *replay_options(ctx, skip)]
    return Supervisor(
        command,
        concurrency,
        max_restarts=max_restarts,
        stop_timeout=stop_timeout,
        draw=drawing,
    )


def _reporting(
    runner: Worker, messages: MessageLog, status_fd: int | None, drawing: bool
) -> contextlib.AbstractContextManager[object]:
    """While the worker runs: report to the supervisor (``--status-fd``), or draw the
    status line on a terminal, or nothing."""

    def tally() -> Tally:
        return messages.tally(runner.processed)

    if status_fd is not None:
        return TallyReporter(status_fd, tally, orphaned=runner.stop)
    if drawing:
        return status_line("zevents worker", tally)
    return contextlib.nullcontext()


def _bus_with_handlers(handlers: tuple[str, ...], pattern: str) -> Bus:
    """A bus on which the handlers (imported now) get the events matching ``pattern``.

    Raises:
        ConfigError: A handler cannot be imported, or is not callable.
    """
    bus = Bus("zevents-worker")
    for spec in handlers:
        # The worker's own zevents.worker.* hooks go to its bus too: the wrapper keeps
        # them from a handler unless --pattern names them. The failed store still names
        # the user's function (frames of zevents' own code are passed over).
        bus.listen(pattern, load_handler(spec, pattern))
    return bus
