"""``zevents queue``: inspect and repair Redis queues, and the workers that run them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from zevents.cli._output import print_json
from zevents.cli._queues import QueueOptions, RedisTarget, queue_options, redis_option

if TYPE_CHECKING:
    from zevents.redis import RedisQueue

__all__ = ["on_named_queue", "queue"]


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


def on_named_queue(function: Callable[..., None]) -> Callable[..., None]:
    """Turn ``function(queue, **options)`` into a command taking NAME and queue options.

    The queue is opened from NAME and the options, given to ``function``, and closed.
    """

    @click.argument("name")
    @queue_options
    @functools.wraps(function)
    def command(name: str, queue_options: QueueOptions, **options: Any) -> None:
        with queue_options.open(name) as target:
            function(target, **options)

    return command


@queue.command(
    epilog="""\b
Examples:
  zevents queue stats orders
  zevents queue stats jobs --driver stream --priorities 10,5,1
"""
)
@on_named_queue
def stats(target: RedisQueue) -> None:
    """Print the counts of queue NAME as JSON: ready per priority, delayed, processing,
    failed."""
    print_json(target.stats())


@queue.command(
    epilog="""\b
Examples:
  zevents queue failed orders
  zevents queue failed orders | jq -r .error
"""
)
@on_named_queue
def failed(target: RedisQueue) -> None:
    """Print the failed messages of queue NAME, one JSON line each, oldest first."""
    for entry in target.failed():
        print_json(
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


@queue.command(
    epilog="""\b
Examples:
  zevents queue retry orders
  zevents queue retry orders --event 'orders.*'
  zevents queue retry orders --id "$(zevents queue failed orders | jq -r .id | head -1)"
"""
)
@click.option("--id", "ids", multiple=True, help="Only this failed message (repeatable).")
@click.option("--event", help="Only messages of this event name or pattern.")
@on_named_queue
def retry(target: RedisQueue, ids: tuple[str, ...], event: str | None) -> None:
    """Put failed messages of queue NAME back to be tried again; prints how many."""
    click.echo(target.retry_failed(ids=list(ids) or None, event=event))


@queue.command(
    epilog="""\b
Examples:
  zevents queue flush orders
"""
)
@on_named_queue
def flush(target: RedisQueue) -> None:
    """Delete every failed message of queue NAME; prints how many."""
    click.echo(target.flush_failed())


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
  zevents queue shutdown --redis-url redis://127.0.0.1:6379/0
"""
)
@redis_option
def shutdown(redis: str | None) -> None:
    """Ask every running worker to stop after the message in hand."""
    from zevents.redis import request_shutdown

    request_shutdown(RedisTarget(redis).url())
    click.echo("shutdown requested")
