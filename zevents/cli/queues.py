"""Redis commands: ``bridge`` (ZeroMQ into a queue), ``worker`` and ``queue`` (inspect).

zevents.redis is imported only when one of these commands runs, so the rest of the
command line works without the ``redis`` extra.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from zevents.cli._options import Seconds
from zevents.cli._receiving import open_and_log, receiving_listener, receiving_options
from zevents.cli.app import configure_logging, verbosity_of
from zevents.cli.serve import load_handler, restore_signals, stop_on_signals
from zevents.eventbus import Bus
from zevents.events import INTERNAL_PREFIX
from zevents.service import EventService

if TYPE_CHECKING:
    from zevents.redis import RedisQueue

logger = logging.getLogger(__name__)

__all__ = ["bridge", "queue", "worker"]

F = TypeVar("F", bound=Callable[..., Any])
_DRIVERS = ("list", "sorted-set", "stream", "set")


def _priorities(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a comma-separated list of whole numbers", param_hint="'--priorities'"
        ) from None


#: ``--redis-url``, falling back to ``$ZEVENTS_REDIS_URL``.
redis_url_option = click.option(
    "--redis-url",
    envvar="ZEVENTS_REDIS_URL",
    metavar="URL",
    help="redis:// URL of the server. [default: $ZEVENTS_REDIS_URL]",
)


def queue_options(command: F) -> F:
    """Add the options that name a queue and its Redis server."""
    decorators = [
        redis_url_option,
        click.option(
            "--driver",
            type=click.Choice(_DRIVERS),
            default="list",
            show_default=True,
            help="Queue driver; use the one the queue was created with.",
        ),
        click.option(
            "--priorities",
            metavar="LEVELS",
            help="Comma-separated priority levels of the queue, e.g. 10,5,1. [default: 0]",
        ),
        click.option(
            "--group",
            default="default",
            show_default=True,
            help="Stream driver: the consumer group.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def open_queue(
    name: str, redis_url: str | None, driver: str, priorities: str | None, group: str
) -> RedisQueue:
    """Open a queue for a command (imports zevents.redis now).

    Raises:
        MissingExtraError: redis-py is not installed.
        QueueError: Bad options or no URL; QueueUnavailable: Redis cannot be reached.
    """
    from zevents.redis import RedisQueue

    return RedisQueue(
        name, redis_url, driver=driver, priorities=_priorities(priorities), group=group
    )


class _Enqueuer:
    """A bus receiver that puts matching events (not zevents' own) into a queue."""

    def __init__(self, queue: RedisQueue, priority: int | None, delay: float) -> None:
        self.queue = queue
        self.priority = priority
        self.delay = delay
        self.count = 0

    def __call__(self, event: str, payload: Any) -> str | None:
        if event.startswith(INTERNAL_PREFIX):
            return None
        message_id = self.queue.send(event, payload, priority=self.priority, delay=self.delay)
        self.count += 1
        return message_id

    def __repr__(self) -> str:
        return f"<enqueue into {self.queue.name!r}>"


@click.command(
    epilog="""\b
Examples:
  zevents bridge --queue orders --pattern 'orders.*' tcp://127.0.0.1:5555
  zevents bridge --queue jobs --confirmed --driver stream ipc:///tmp/jobs.sock

With --confirmed, a sender's confirmation means "stored in Redis": an event is
acknowledged only after it was enqueued, and a Redis failure is reported back to the
sender (emit --confirmed exits 1) instead of being lost.
"""
)
@receiving_options
@click.option("--queue", "queue_name", required=True, metavar="NAME", help="Queue to fill.")
@queue_options
@click.option(
    "--pattern", default="*", show_default=True, help="Only events matching this pattern."
)
@click.option("--priority", type=int, help="Priority of the enqueued messages.")
@click.option(
    "--delay",
    type=Seconds(),
    default=0.0,
    show_default=True,
    metavar="SECONDS",
    help="Delay before the enqueued messages are due.",
)
@click.pass_context
def bridge(ctx: click.Context, /, **params: Any) -> None:
    """Receive ZeroMQ events on ENDPOINTs and put them into a Redis queue."""
    service = EventService(Bus("zevents-bridge"), poll_timeout=params["poll_timeout"])
    previous = stop_on_signals(service)
    try:
        _bridge(ctx, service, **params)
    finally:
        restore_signals(previous)


def _bridge(
    ctx: click.Context,
    service: EventService,
    *,
    endpoints: tuple[str, ...],
    bind: bool,
    socket_type: str | None,
    prefixes: tuple[str, ...],
    confirmed: bool,
    config: str | None,
    connection: str | None,
    queue_name: str,
    redis_url: str | None,
    driver: str,
    priorities: str | None,
    group: str,
    pattern: str,
    priority: int | None,
    delay: float,
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
    configure_logging(verbosity_of(ctx))
    target = open_queue(queue_name, redis_url, driver, priorities, group)
    try:
        enqueuer = _Enqueuer(target, priority, delay)
        service.bus.listen(pattern, enqueuer)
        open_and_log(service, listener, f"queue {queue_name!r} ({driver})")
        service.run()
        logger.info("bridge stopped after enqueueing %d event(s)", enqueuer.count)
    finally:
        target.close()


@click.command(
    epilog="""\b
Examples:
  zevents worker --queue orders --handler myapp.jobs:on_order
  zevents worker --queue jobs --driver stream --handler myapp.jobs:run --fork

Stops after the message in hand, with exit status 0, on SIGTERM or SIGINT, after
--max-messages, or when `zevents queue shutdown` is run.
"""
)
@click.option(
    "--queue",
    "queue_names",
    required=True,
    multiple=True,
    metavar="NAME",
    help="Queue to work (repeatable; earlier queues first).",
)
@queue_options
@click.option(
    "--handler",
    "handlers",
    required=True,
    multiple=True,
    metavar="MODULE:CALLABLE",
    help="Call handler(event, payload) for each message matching --pattern (repeatable).",
)
@click.option("--pattern", default="*", show_default=True, help="Events the handlers get.")
@click.option(
    "--serve",
    "serve_levels",
    metavar="SPEC",
    help="Only these priority levels: a list (10,20) or a range (20-40, 25-, -20).",
)
@click.option("--max-messages", type=click.IntRange(min=1), help="Stop after N messages.")
@click.option("--fork", is_flag=True, help="Run each message in a child process.")
@click.option(
    "--keep-alive",
    type=Seconds(positive=True),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Lease of a taken message, renewed while its handler runs.",
)
@click.option("--max-attempts", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--backoff",
    type=click.Choice(["exponential", "linear"]),
    default="exponential",
    show_default=True,
)
@click.option(
    "--backoff-base",
    type=Seconds(),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
)
@click.option(
    "--backoff-cap",
    type=Seconds(),
    default=960.0,
    show_default=True,
    metavar="SECONDS",
)
@click.pass_context
def worker(
    ctx: click.Context,
    queue_names: tuple[str, ...],
    redis_url: str | None,
    driver: str,
    priorities: str | None,
    group: str,
    handlers: tuple[str, ...],
    pattern: str,
    serve_levels: str | None,
    max_messages: int | None,
    fork: bool,
    keep_alive: float,
    max_attempts: int,
    backoff: str,
    backoff_base: float,
    backoff_cap: float,
) -> None:
    """Take messages from Redis queues and call handlers with them."""
    from zevents.redis import RetryPolicy, Worker

    receivers = [load_handler(spec, pattern) for spec in handlers]
    configure_logging(verbosity_of(ctx))
    bus = Bus("zevents-worker")
    for receiver in receivers:
        # A worker fires only queued events, so the user's function is registered as it
        # is: the failed store then names it as the receiver that raised.
        bus.listen(pattern, receiver.function)
    opened: list[RedisQueue] = []
    try:
        for name in queue_names:
            opened.append(open_queue(name, redis_url, driver, priorities, group))
        retry = RetryPolicy(max_attempts, backoff, backoff_base, backoff_cap)
        try:
            runner = Worker(
                opened,
                bus,
                retry=retry,
                keep_alive=keep_alive,
                max_messages=max_messages,
                fork=fork,
                serve=serve_levels,
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--serve'") from None
        logger.info(
            "worker %s on %s -> %s",
            runner.id,
            ", ".join(queue_names),
            ", ".join(handlers),
        )
        processed = runner.run()
        logger.info("worker stopped after %d message(s)", processed)
    finally:
        for opened_queue in opened:
            opened_queue.close()


@click.group()
def queue() -> None:
    """Inspect and manage Redis queues.

    \b
    Examples:
      zevents queue stats orders
      zevents queue failed orders | jq .error
      zevents queue retry orders --event 'orders.*'
      zevents queue workers
    """


def _print_json(value: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS))
    sys.stdout.buffer.write(b"\n")
    sys.stdout.buffer.flush()


def on_named_queue(function: Callable[..., None]) -> Callable[..., None]:
    """Turn ``function(queue, **options)`` into a command taking NAME and queue options.

    The queue is opened from NAME and the options, given to ``function``, and closed.
    """

    @click.argument("name")
    @queue_options
    @functools.wraps(function)
    def command(
        name: str,
        redis_url: str | None,
        driver: str,
        priorities: str | None,
        group: str,
        **options: Any,
    ) -> None:
        with open_queue(name, redis_url, driver, priorities, group) as target:
            function(target, **options)

    return command


@queue.command()
@on_named_queue
def stats(target: RedisQueue) -> None:
    """Print the counts of queue NAME as JSON: ready per priority, delayed, processing,
    failed."""
    _print_json(target.stats())


@queue.command()
@on_named_queue
def failed(target: RedisQueue) -> None:
    """Print the failed messages of queue NAME, one JSON line each, oldest first."""
    for entry in target.failed():
        _print_json(
            {
                "id": entry.id,
                "event": entry.event,
                "payload": entry.payload,
                "error": entry.error,
                "receiver": entry.receiver,
                "attempts": entry.attempts,
                "failed_at": entry.failed_at,
                "reason": entry.reason,
            }
        )


@queue.command()
@click.option("--id", "ids", multiple=True, help="Only this failed message (repeatable).")
@click.option("--event", help="Only messages of this event name or pattern.")
@on_named_queue
def retry(target: RedisQueue, ids: tuple[str, ...], event: str | None) -> None:
    """Put failed messages of queue NAME back to be tried again; prints how many."""
    click.echo(target.retry_failed(ids=list(ids) or None, event=event))


@queue.command()
@on_named_queue
def flush(target: RedisQueue) -> None:
    """Delete every failed message of queue NAME; prints how many."""
    click.echo(target.flush_failed())


@queue.command()
@redis_url_option
def workers(redis_url: str | None) -> None:
    """Print the live workers, one JSON line each (from their heartbeats)."""
    from zevents.redis import workers as live_workers

    for entry in live_workers(redis_url):
        _print_json(entry)


@queue.command()
@redis_url_option
def shutdown(redis_url: str | None) -> None:
    """Ask every running worker to stop after the message in hand."""
    from zevents.redis import request_shutdown

    request_shutdown(redis_url)
    click.echo("shutdown requested")
