"""``zevents queue``: send to, inspect and repair Redis queues, and see their workers.

Inspection (``stats``, ``failed``, ``list``, ``workers``) only reads. Tables are drawn for
a terminal; a pipe or a file gets JSON lines unless ``--table`` is given (then the table
is printed whole, never cut to a width).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click

from zevents.cli._options import Seconds, parse_json, seconds_option
from zevents.cli._output import print_json
from zevents.cli._queue_tables import output_option, print_failed, show_overview, wants_json
from zevents.cli._queues import (
    QueueOptions,
    RedisTarget,
    check_send,
    queue_options,
    redis_option,
)
from zevents.errors import QueueUnavailable
from zevents.events import INTERNAL_PREFIX

if TYPE_CHECKING:
    from zevents.cli.emit import BadLine, Line
    from zevents.redis import RedisQueue

__all__ = ["list_queues", "on_named_queue", "queue"]


@click.group()
def queue() -> None:
    """Send to, inspect and repair Redis queues.

    \b
    Examples:
      zevents queue send orders orders.created '{"id": 1}'
      zevents queue list
      zevents queue stats orders
      zevents queue failed orders
      zevents queue retry orders --event 'orders.*'
      zevents queue workers
      zevents queue archive orders --older-than '90 days' --force
      zevents queue replay orders --identifier order-7
    """


def on_named_queue(
    *,
    must_exist: bool = False,
    check: Callable[..., None] | None = None,
    options: Callable[[Callable[..., None]], Callable[..., None]] = queue_options,
    inspect: bool = False,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Turn ``function(queue, **options)`` into a command taking NAME and queue options.

    Args:
        must_exist: Refuse a queue that was never used (``QueueNotFound``, naming the
            queues that exist) before calling ``function``, so a mistyped name is not
            created by a write.
        check: Called with the options before the queue is opened (before Redis is
            reached); raises ``click.UsageError`` for a bad combination.
        options: The queue options it takes (``whole_queue_options``: no ``--group``).
        inspect: The command only reads (``--group`` is not created).
    """

    def decorate(function: Callable[..., None]) -> Callable[..., None]:
        @click.argument("name")
        @options
        @functools.wraps(function)
        def command(name: str, queue_options: QueueOptions, **options: Any) -> None:
            if check is not None:
                check(**options)
            with queue_options.open(name, inspect=inspect) as target:
                if must_exist:
                    _require(target)
                function(target, **options)

        return command

    return decorate


def _require(target: RedisQueue) -> None:
    """Raise ``QueueNotFound`` (naming the queues there are) if ``target`` was never used."""
    if not target.exists():
        target.stats()  # raises QueueNotFound for a queue that does not exist


# --- send ---------------------------------------------------------------------------

_SEND_EPILOG = """\b
Examples:
  zevents queue send orders orders.created '{"id": 1}'
  zevents queue send orders orders.created '{"id": 2}' --delay 60
  zevents queue send reports report.build '{}' --priorities 10,5,1 --priority 10
  zevents queue send orders orders.created '{"id": 3}' --identifier order-3 --unique
  zevents queue send orders orders.created - < payloads.jsonl
  zevents queue send orders - < events.jsonl

\b
Prints the id of each message, one per line. PAYLOAD '-' reads JSON lines from
stdin: a bare payload (sent as EVENT) or {"event": ..., "payload": ...}; EVENT '-'
alone takes only the second form. A bad line is reported with its number and
skipped; the exit status is then 1. The options apply to every message and are
checked against the queue before anything is sent. A queue's first message creates
it with --driver and --priorities (default: list, the one level 0).
"""


@queue.command(epilog=_SEND_EPILOG)
@click.argument("name")
@click.argument("event")
@click.argument("payload", required=False)
@queue_options
@seconds_option("--delay", default=0.0, help="Seconds before the message is due (Redis clock).")
@click.option(
    "--priority",
    type=int,
    metavar="LEVEL",
    help="One of the queue's priority levels. [default: the queue's default priority]",
)
@click.option("--identifier", metavar="ID", help="A label to find the message by.")
@click.option(
    "--serial-group",
    metavar="NAME",
    help="Messages of one serial group are handled one at a time, in order.",
)
@click.option(
    "--unique",
    is_flag=True,
    help="With --identifier: if an unfinished message has it, send nothing and print "
    "that message's id.",
)
def send(
    name: str, event: str, payload: str | None, queue_options: QueueOptions, **options: Any
) -> None:
    """Put EVENT with a JSON PAYLOAD (default null) into queue NAME, directly.

    PAYLOAD '-' reads one message per stdin line.
    """
    lines = _lines(event, payload)
    with queue_options.open(name) as target:
        check_send(target, **options)
        _send_lines(target, lines, options)


def _event_problem(event: object) -> str | None:
    """Why ``event`` cannot be queued, or None when it can."""
    if not isinstance(event, str) or not event:
        return "the event name must be a non-empty string"
    if event.startswith(INTERNAL_PREFIX):
        return f"the event name {event!r} is reserved: zevents' own events are never queued"
    return None


def _lines(event: str, payload: str | None) -> Iterable[Line | BadLine]:
    """What to send: EVENT with PAYLOAD, or (lazily) the JSON lines of stdin.

    Raises:
        click.BadParameter: A bad EVENT, PAYLOAD, or the two together.
    """
    from zevents.cli.emit import Line, read_lines

    if event == "-":
        if payload is not None:
            raise click.BadParameter(
                "EVENT '-' reads whole events from stdin and takes no PAYLOAD", param_hint="EVENT"
            )
        return read_lines(sys.stdin.buffer, None)
    problem = _event_problem(event)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="EVENT")
    if payload == "-":
        return read_lines(sys.stdin.buffer, event)
    value = None if payload is None else parse_json(payload, "PAYLOAD")
    return [Line(None, event, value)]


def _send_lines(target: RedisQueue, lines: Iterable[Line | BadLine], options: Any) -> None:
    """Send each line, printing its id; report and skip bad lines.

    Raises:
        QueueUnavailable: Redis went away (sending stopped there; the line is named).
        click.ClickException: Some lines were bad (exit status 1).
    """
    from zevents.cli.emit import BadLine

    sent = bad = 0
    for line in lines:
        problem = line.reason if isinstance(line, BadLine) else _event_problem(line.event)
        if isinstance(line, BadLine) or problem is not None:
            bad += 1
            click.echo(f"zevents queue send: line {line.number}: {problem}; skipped", err=True)
            continue
        try:
            click.echo(target.send(line.event, line.payload, **options))
        except QueueUnavailable as exc:
            if line.number is None:
                raise
            raise QueueUnavailable(
                f"{exc}; line {line.number} was not sent, nor any after it "
                f"(resume with: tail -n +{line.number})"
            ) from exc
        sent += 1
    if bad:
        rest = f"the other {sent} sent" if sent else "nothing was sent"
        raise click.ClickException(f"{bad} bad line{'' if bad == 1 else 's'} skipped; {rest}")


# --- list ---------------------------------------------------------------------------


_LIST_EPILOG = """\b
Examples:
  zevents queue list
  zevents queue list --watch 2
  zevents queue list --json | jq -c '{name, ready, failed}'
  zevents queues

\b
Columns: ready per priority (level:count), delayed, processing (leased by a
worker), failed, the age of the oldest ready message, and the live workers on the
queue (stream queues: the default group). On a pipe or a file it prints JSON lines
(one per queue; --table for the table, printed whole); --watch then prints them
again every SECONDS. It only reads.
"""


@queue.command("list", epilog=_LIST_EPILOG)
@output_option
@click.option(
    "--watch",
    "interval",
    type=Seconds(positive=True),
    metavar="SECONDS",
    help="Redraw every SECONDS until Ctrl-C or SIGTERM (off a terminal, print again every "
    "SECONDS).",
)
@redis_option
def list_queues(redis: str | None, as_json: bool | None, interval: float | None) -> None:
    """List every queue, its counts and workers.

    One row per queue under the key prefix, like rq info; also run as zevents queues.
    """
    from zevents.redis import WorkerRegistry

    registry = WorkerRegistry(RedisTarget(redis).url())
    try:
        show_overview(registry, as_json=wants_json(as_json), interval=interval)
    finally:
        registry.close()


# --- stats, failed, retry, flush --------------------------------------------------


@queue.command(
    epilog="""\b
Examples:
  zevents queue stats orders
  zevents queue stats jobs --driver stream --priorities 10,5,1
"""
)
@on_named_queue(inspect=True)
def stats(target: RedisQueue) -> None:
    """Print the counts of queue NAME as JSON: ready per priority, delayed, processing,
    failed."""
    print_json(target.stats())


@queue.command(
    epilog="""\b
Examples:
  zevents queue failed orders
  zevents queue failed orders --compact
  zevents queue failed orders --json | jq -r .error

\b
On a terminal: a table (failed at: local time). On a pipe or a file: one JSON line
per message (id, event, payload, error, receiver, attempts, failed_at, reason);
--compact keeps id, event and error, in either form.
"""
)
@output_option
@click.option("--compact", is_flag=True, help="Only the id, event and error of each message.")
@on_named_queue(must_exist=True, inspect=True)
def failed(target: RedisQueue, as_json: bool | None, compact: bool) -> None:
    """Print the failed messages of queue NAME, oldest first."""
    print_failed(target.failed(), as_json=wants_json(as_json), compact=compact)


def _check_selectors(
    everything: bool, ids: tuple[str, ...], event: str | None, receiver: str | None
) -> None:
    """``retry`` needs ``--all`` or a selector, not both, and no empty one.

    Raises:
        click.UsageError: It has none, both, or an empty one.
    """
    given = {"--id": ids or None, "--event": event, "--receiver": receiver}
    chosen = [flag for flag, value in given.items() if value is not None]
    if everything and chosen:
        raise click.UsageError(f"--all retries every failed message; drop {', '.join(chosen)}")
    if not everything and not chosen:
        raise click.UsageError(
            "say which failed messages to retry: --all, or --id ID, --event PATTERN, "
            "--receiver NAME (they combine)"
        )
    # An empty pattern would select nothing by itself, so the library retries all.
    empty = [flag for flag in chosen if given[flag] == "" or (flag == "--id" and "" in ids)]
    if empty:
        raise click.UsageError(f"{empty[0]} must not be empty")


@queue.command(
    epilog="""\b
Examples:
  zevents queue retry orders --all
  zevents queue retry orders --event 'orders.*'
  zevents queue retry orders --event 'orders.*' --receiver shop.on_order
  zevents queue retry orders --id "$(zevents queue failed orders --json | jq -r .id | head -1)"

\b
--id, --event and --receiver combine: a message is retried if it matches each one
given. Without --all or a selector nothing is retried (exit status 2).
"""
)
@click.option("--all", "everything", is_flag=True, help="Retry every failed message.")
@click.option("--id", "ids", multiple=True, metavar="ID", help="This failed message (repeatable).")
@click.option("--event", metavar="PATTERN", help="Messages of this event name or * pattern.")
@click.option(
    "--receiver", metavar="NAME", help="Messages whose failing receiver is this name or pattern."
)
@on_named_queue(must_exist=True, check=_check_selectors)
def retry(
    target: RedisQueue,
    everything: bool,
    ids: tuple[str, ...],
    event: str | None,
    receiver: str | None,
) -> None:
    """Put failed messages of queue NAME back to be tried again; prints how many."""
    click.echo(target.retry_failed(ids=list(ids) or None, event=event, receiver=receiver))


@queue.command(
    epilog="""\b
Examples:
  zevents queue flush orders
"""
)
@on_named_queue(must_exist=True)
def flush(target: RedisQueue) -> None:
    """Delete every failed message of queue NAME; prints how many."""
    click.echo(target.flush_failed())


# --- workers ------------------------------------------------------------------------


@queue.command(
    epilog="""\b
Examples:
  zevents queue workers
  zevents queue workers | jq -c '{host, pid, status}'
"""
)
@redis_option
def workers(redis: str | None) -> None:
    """Print the live workers, one JSON line each (from their heartbeats)."""
    from zevents.redis import workers as live_workers

    for entry in live_workers(RedisTarget(redis).url(), prune=False):
        print_json(entry)


@queue.command(
    epilog="""\b
Examples:
  zevents queue shutdown
  zevents queue shutdown --redis redis://127.0.0.1:6379/0
"""
)
@redis_option
def shutdown(redis: str | None) -> None:
    """Ask every running worker to stop after the message in hand."""
    from zevents.redis import request_shutdown

    request_shutdown(RedisTarget(redis).url())
    click.echo("shutdown requested")
