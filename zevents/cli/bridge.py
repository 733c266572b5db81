"""``zevents bridge``: receive ZeroMQ events and put them into a Redis queue."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import click

from zevents.cli._options import seconds_option
from zevents.cli._queues import QueueOptions, queue_options
from zevents.cli._receiving import (
    ReceiveOptions,
    receive_options,
    start_receiving,
    stopping_service,
)
from zevents.events import INTERNAL_PREFIX

if TYPE_CHECKING:
    from zevents.redis import RedisQueue

logger = logging.getLogger(__name__)

__all__ = ["bridge"]


class Enqueuer:
    """A bus receiver that puts matching events (not zevents' own) into a queue.

    Args:
        queue: The queue to fill.
        priority: The priority of the messages; ``None`` is the queue's default.
        delay: Seconds before the messages are due.
    """

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


_EPILOG = """\b
Examples:
  zevents bridge --queue orders --pattern 'orders.*' tcp://127.0.0.1:5555
  zevents bridge --queue jobs --confirmed --driver stream ipc:///tmp/jobs.sock

With --confirmed, a sender's confirmation means "stored in Redis": an event is
acknowledged only after it was enqueued, and a Redis failure is reported back to the
sender (emit --confirmed exits 1) instead of being lost.
"""


@click.command(epilog=_EPILOG)
@receive_options
@click.option("--queue", "queue_name", required=True, metavar="NAME", help="Queue to fill.")
@queue_options
@click.option(
    "--pattern", default="*", show_default=True, help="Only events matching this pattern."
)
@click.option(
    "--priority",
    type=int,
    metavar="LEVEL",
    help="Priority of the enqueued messages. [default: the queue's lowest]",
)
@seconds_option("--delay", default=0.0, help="Delay before the enqueued messages are due.")
def bridge(
    receive: ReceiveOptions,
    queue_name: str,
    queue_options: QueueOptions,
    pattern: str,
    priority: int | None,
    delay: float,
) -> None:
    """Receive ZeroMQ events on ENDPOINTs and put them into a Redis queue."""
    with stopping_service("zevents-bridge", receive) as service:
        socket = receive.receiving_socket()
        with queue_options.open(queue_name) as target:
            enqueuer = Enqueuer(target, priority, delay)
            service.bus.listen(pattern, enqueuer)
            where = start_receiving(service, socket)
            logger.info("receiving on %s -> queue %r (%s)", where, queue_name, target.driver_name)
            service.run()
            logger.info("bridge stopped after enqueueing %d event(s)", enqueuer.count)
