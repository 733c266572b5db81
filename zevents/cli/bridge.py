"""``zevents bridge``: receive ZeroMQ events and put them into a Redis queue."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import click

from zevents._signals import installed_signal_handlers, stop_handlers
from zevents.cli._options import seconds_option, verbosity_options
from zevents.cli._queues import QueueOptions, queue_options
from zevents.cli._receiving import ReceiveOptions, receive_options, start_receiving
from zevents.cli._security import SocketCommand
from zevents.errors import ConfigError
from zevents.eventbus import Bus
from zevents.redis.defaults import DEFAULT_MIN_REPLICAS

if TYPE_CHECKING:
    from zevents.redis import Bridge, RedisQueue

logger = logging.getLogger(__name__)

__all__ = ["bridge", "open_bridge"]


def open_bridge(
    queue: RedisQueue,
    pattern: str,
    priority: int | None,
    delay: float,
    poll_timeout: float,
    min_replicas: int | None = None,
) -> Bridge:
    """The bridge into ``queue``, checked before anything is received: Redis answers,
    and takes the options.

    Raises:
        QueueUnavailable: Redis cannot be reached (exit status 1).
        click.BadParameter: ``--priority`` or ``--delay`` is not one the queue takes.
    """
    from zevents.redis import Bridge

    try:
        return Bridge(
            queue,
            Bus("zevents-bridge"),
            pattern=pattern,
            priority=priority,
            delay=delay,
            poll_timeout=poll_timeout,
            min_replicas=min_replicas,
        )
    except ConfigError as exc:
        flag = "--delay" if exc.option == "delay" else "--priority"
        raise click.BadParameter(str(exc), param_hint=f"'{flag}'") from None


_EPILOG = """\b
Examples:
  zevents bridge --queue orders tcp://127.0.0.1:5555
  zevents bridge --queue orders --pattern 'orders.*' --confirmed tcp://127.0.0.1:5555
  zevents bridge --queue jobs --priorities 10,5,1 --priority 10 ipc:///tmp/jobs.sock
  zevents bridge --queue orders --connect tcp://10.0.0.2:5556 --subscribe orders.

With --confirmed, a sender's confirmation means "stored in Redis": an event is
acknowledged only after Redis accepted it, and a Redis failure is reported back to the
sender (emit --confirmed exits 1; the event may still have been stored) instead of
being lost. Without it, an event Redis does not take is logged at ERROR and dropped.
With --min-replicas N, "stored" means on the master and on N replicas (Redis WAIT): a
batch fewer replicas acknowledged in time is reported as not stored.
Redis unreachable at the start is exit status 1; a bad queue option, status 2.
Stops cleanly, with exit status 0, on SIGTERM or SIGINT (Ctrl-C).
"""


@click.command(cls=SocketCommand, epilog=_EPILOG)
@verbosity_options
@receive_options
@click.option("--queue", "queue_name", required=True, metavar="NAME", help="Queue to fill.")
@queue_options
@click.option(
    "--pattern",
    default="*",
    show_default=True,
    help="Only events matching this pattern ('*' matches any run of characters).",
)
@click.option(
    "--priority",
    type=int,
    metavar="LEVEL",
    help="Priority of the enqueued messages, one of the queue's levels. "
    "[default: the queue's default level]",
)
@seconds_option("--delay", default=0.0, help="Delay before the enqueued messages are due.")
@click.option(
    "--min-replicas",
    type=click.IntRange(min=0),
    default=DEFAULT_MIN_REPLICAS,
    show_default=True,
    metavar="N",
    help="Confirm a batch only once N replicas have it (Redis WAIT); 0: the master's word.",
)
def bridge(
    receive: ReceiveOptions,
    queue_name: str,
    queue_options: QueueOptions,
    pattern: str,
    priority: int | None,
    delay: float,
    min_replicas: int,
) -> None:
    """Receive ZeroMQ events on ENDPOINTs and put them into a Redis queue.

    What each poll returns (up to 1,000 events) is stored in one round trip; with
    --confirmed, each event is confirmed once its batch was accepted.
    """
    if not pattern:
        raise click.BadParameter("the pattern is empty; use '*' for every event")
    socket = receive.receiving_socket()
    with queue_options.open(queue_name) as target:
        bridge = open_bridge(target, pattern, priority, delay, receive.poll_timeout, min_replicas)
        with installed_signal_handlers(stop_handlers(bridge.stop)):
            where = start_receiving(bridge, socket)
            logger.info("receiving on %s -> queue %r (%s)", where, queue_name, target.driver_name)
            bridge.run()
