"""``zevents bridge``: receive ZeroMQ events and put them into a Redis queue."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from zevents.cli._options import seconds_option, verbosity_options
from zevents.cli._queues import QueueOptions, queue_options
from zevents.cli._receiving import (
    ReceiveOptions,
    receive_options,
    start_receiving,
    stopping_service,
)
from zevents.errors import ConfigError, QueueError, QueueNotFound
from zevents.events import INTERNAL_PREFIX

if TYPE_CHECKING:
    from zevents.redis import RedisQueue

logger = logging.getLogger(__name__)

__all__ = ["Enqueuer", "RedisWatch", "bridge"]

#: Seconds between two looks at Redis (so an outage shows even with no event coming).
CHECK_EVERY = 2.5
#: Seconds between two warnings while Redis stays unavailable.
WARN_EVERY = 5.0


def _text(error: Exception) -> str:
    """An error's message without its final full stop, to go on inside a sentence."""
    return str(error).rstrip(".")


class RedisWatch:
    """Says at WARNING, every ``WARN_EVERY`` seconds at most and while it lasts, that
    Redis cannot be reached; and at INFO when it is back.

    The enqueuer reports each send; a thread of its own looks at Redis every
    ``CHECK_EVERY`` seconds, so an outage with no event coming is told too.

    Args:
        queue: The queue whose server is watched.
        confirmed: Whether senders are told of a failed enqueue (for the warning's words).
    """

    def __init__(self, queue: RedisQueue, *, confirmed: bool) -> None:
        self.queue = queue
        self.meanwhile = (
            "confirmed senders get an error" if confirmed else "events received are dropped"
        )
        self.down_since: float | None = None
        self._warned_at = 0.0
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def failed(self, error: QueueError) -> None:
        """Redis did not take a command: warn, unless a warning went out just now."""
        now = time.monotonic()
        with self._lock:
            if self.down_since is None:
                self.down_since = self._warned_at = now
                logger.warning("%s; %s until it is back", _text(error), self.meanwhile)
            elif now - self._warned_at >= WARN_EVERY:
                self._warned_at = now
                logger.warning(
                    "Redis still unavailable after %.0f s (%s): %s",
                    now - self.down_since,
                    self.meanwhile,
                    _text(error),
                )

    def succeeded(self) -> None:
        """Redis took a command: say so once if it had been unavailable."""
        with self._lock:
            if self.down_since is None:
                return
            down_for, self.down_since = time.monotonic() - self.down_since, None
        logger.info("Redis is available again, after %.1f s", down_for)

    def check(self) -> None:
        """Ask Redis something that writes nothing, and note the outcome."""
        try:
            self.queue.stats()
        except QueueNotFound:
            self.succeeded()  # Redis answered (a server that lost its data, or a new queue)
        except QueueError as exc:
            self.failed(exc)
        else:
            self.succeeded()

    @contextlib.contextmanager
    def watching(self) -> Iterator[RedisWatch]:
        """Check Redis every ``CHECK_EVERY`` seconds in a thread while the block runs."""
        thread = threading.Thread(target=self._run, name="zevents-bridge-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stopped.set()
            # A check in flight is bounded by the client's socket timeout; not waited out.
            thread.join(0.5)

    def _run(self) -> None:
        while not self._stopped.wait(CHECK_EVERY):
            try:
                self.check()
            except Exception:
                logger.exception("checking Redis failed")


class Enqueuer:
    """A bus receiver that puts the events received (not zevents' own) into a queue.

    When Redis does not take one, a confirmed event's error goes back to its sender
    (the service confirms the failure); an unconfirmed one is logged at ERROR, dropped.

    Args:
        queue: The queue to fill.
        priority: The priority of the messages; ``None`` is the queue's default.
        delay: Seconds before the messages are due.
        watch: Told of each send's outcome.
        confirmed: Whether the senders wait for a confirmation.
    """

    def __init__(
        self,
        queue: RedisQueue,
        priority: int | None,
        delay: float,
        *,
        watch: RedisWatch,
        confirmed: bool,
    ) -> None:
        self.queue = queue
        self.priority = priority
        self.delay = delay
        self.watch = watch
        self.confirmed = confirmed
        self.count = 0
        self.dropped = 0

    def __call__(self, event: str, payload: Any) -> str | None:
        if event.startswith(INTERNAL_PREFIX):
            return None
        try:
            message_id = self.queue.send(event, payload, priority=self.priority, delay=self.delay)
        except QueueError as exc:
            self.watch.failed(exc)
            if self.confirmed:
                raise  # the service confirms the failure: the sender knows, and can resend
            self.dropped += 1
            logger.error("dropped %r, received without confirmation: %s", event, _text(exc))
            return None
        self.watch.succeeded()
        self.count += 1
        return message_id

    def __repr__(self) -> str:
        return f"<enqueue into {self.queue.name!r}>"


def check_queue(queue: RedisQueue, priority: int | None, delay: float) -> None:
    """Check, before anything is received, that Redis answers and takes the options.

    Raises:
        QueueUnavailable: Redis cannot be reached (exit status 1).
        click.BadParameter: ``--priority`` or ``--delay`` is not one the queue takes.
    """
    queue.exists()
    try:
        queue.check_send(priority=priority, delay=delay)
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
Redis unreachable at the start is exit status 1; a bad queue option, status 2.
Stops cleanly, with exit status 0, on SIGTERM or SIGINT (Ctrl-C).
"""


@click.command(epilog=_EPILOG)
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
def bridge(
    receive: ReceiveOptions,
    queue_name: str,
    queue_options: QueueOptions,
    pattern: str,
    priority: int | None,
    delay: float,
) -> None:
    """Receive ZeroMQ events on ENDPOINTs and put them into a Redis queue."""
    if not pattern:
        raise click.BadParameter("the pattern is empty; use '*' for every event")
    with stopping_service("zevents-bridge", receive) as service:
        socket = receive.receiving_socket()
        with queue_options.open(queue_name) as target:
            check_queue(target, priority, delay)
            confirmed = bool(socket.options.confirmed)
            watch = RedisWatch(target, confirmed=confirmed)
            enqueuer = Enqueuer(target, priority, delay, watch=watch, confirmed=confirmed)
            service.bus.listen(pattern, enqueuer)
            where = start_receiving(service, socket)
            logger.info("receiving on %s -> queue %r (%s)", where, queue_name, target.driver_name)
            with watch.watching():
                service.run()
            dropped = f"; dropped {enqueuer.dropped}" if enqueuer.dropped else ""
            logger.info("bridge stopped after enqueueing %d event(s)%s", enqueuer.count, dropped)
