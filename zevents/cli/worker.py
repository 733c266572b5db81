"""``zevents worker``: take messages from Redis queues and call handlers with them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from zevents.cli._handlers import handler_option, load_handler
from zevents.cli._options import seconds_option
from zevents.cli._queues import QueueOptions, queue_options
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
    from zevents.redis import RedisQueue

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

Stops after the message in hand, with exit status 0, on SIGTERM or SIGINT, after
--max-messages, or when `zevents queue shutdown` is run.
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
    "Call handler(event, payload) for each message matching --pattern (repeatable).",
    required=True,
)
@click.option("--pattern", default="*", show_default=True, help="Events the handlers get.")
@click.option(
    "--serve",
    metavar="SPEC",
    help="Only these priority levels: a list (10,20) or a range (20-40, 25-, -20).",
)
@click.option(
    "--max-messages", type=click.IntRange(min=1), metavar="N", help="Stop after N messages."
)
@click.option("--fork", is_flag=True, help="Run each message in a child process.")
@seconds_option(
    "--keep-alive",
    default=DEFAULT_KEEP_ALIVE,
    positive=True,
    help="Lease of a taken message, renewed while its handler runs.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_ATTEMPTS,
    show_default=True,
    metavar="N",
    help="Attempts in all; after the last one the message goes to the failed store.",
)
@click.option(
    "--backoff",
    type=click.Choice(BACKOFFS),
    default=DEFAULT_BACKOFF,
    show_default=True,
    help="How the wait before a retry grows: exponential (base, 2*base, 4*base, ...) "
    "or linear (base * attempt).",
)
@seconds_option("--backoff-base", default=DEFAULT_BACKOFF_BASE, help="Seconds of the first wait.")
@seconds_option("--backoff-cap", default=DEFAULT_BACKOFF_CAP, help="The longest wait, in seconds.")
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
    keep_alive: float,
    max_attempts: int,
    backoff: str,
    backoff_base: float,
    backoff_cap: float,
) -> None:
    """Take messages from Redis queues and call handlers with them."""
    from zevents.redis import Worker

    bus = _bus_with_handlers(handlers, pattern)
    with _options_as_flags(ctx):
        # Checked before any queue is opened, so a bad option never waits for Redis;
        # a queue opened without --priorities has the one level 0.
        retry = RetryPolicy(max_attempts, backoff, backoff_base, backoff_cap)
        select_priorities(queue_options.priorities or (0,), serve)
    with contextlib.ExitStack() as opened:
        queues: list[RedisQueue] = [
            opened.enter_context(queue_options.open(name)) for name in queue_names
        ]
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
        logger.info("worker %s on %s -> %s", runner.id, ", ".join(queue_names), ", ".join(handlers))
        processed = runner.run()
        logger.info("worker stopped after %d message(s)", processed)


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
