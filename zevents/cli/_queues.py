"""What ``bridge``, ``worker`` and ``queue`` share: the options naming a Redis queue.

zevents.redis is imported only when a queue is opened, so the rest of the command line
works without the ``redis`` extra (``zevents.redis.defaults`` needs no redis-py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from zevents.cli._options import option_group
from zevents.errors import ConfigError, EmbeddedRedisMissing
from zevents.redis.defaults import DEFAULT_GROUP, DRIVERS, URL_ENV

if TYPE_CHECKING:
    from zevents.redis import RedisQueue
    from zevents.redis.connections import RedisConnection

__all__ = [
    "NO_REDIS",
    "SEND_FLAGS",
    "QueueOptions",
    "RedisTarget",
    "check_send",
    "queue_options",
    "redis_option",
    "whole_queue_options",
]


class PriorityLevels(click.ParamType[tuple[int, ...]]):
    """Comma-separated whole numbers (``10,5,1``); empty parts are skipped."""

    name = "levels"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, ...]:
        if isinstance(value, tuple):
            return value
        try:
            return tuple(int(part) for part in str(value).split(",") if part.strip())
        except ValueError:
            self.fail(f"{value!r} is not a comma-separated list of whole numbers", param, ctx)


class RedisSpec(click.ParamType[str]):
    """A Redis URL, or the name of a ``[redis.NAME]`` connection of the config file;
    checked when the command starts (a URL redis-py would misread is refused)."""

    name = "redis"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from zevents.redis.connections import resolve_redis

        try:
            resolve_redis(str(value))
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


#: ``--redis URL|NAME`` (``--redis-url`` is the same option).
redis_option = click.option(
    "--redis",
    "--redis-url",
    "redis",
    type=RedisSpec(),
    metavar="URL|NAME",
    help=f"The Redis server: a redis:// URL, or a [redis.NAME] connection of the config "
    f"file. [default: ${URL_ENV}, else [redis.default], else the embedded Redis in "
    f"./.zevents]",
)


@dataclass(frozen=True)
class RedisTarget:
    """The Redis server a command talks to, as given on its command line.

    Attributes:
        spec: ``--redis`` (a URL or a connection name); ``None``: the default.
    """

    spec: str | None = None

    def resolve(self) -> tuple[str | None, RedisConnection | None]:
        """The URL (None: the embedded Redis) and the connection it came from.

        Raises:
            ConfigError: The default from the environment or the config file is bad.
        """
        from zevents.redis.connections import resolve_redis

        return resolve_redis(self.spec)

    def url(self) -> str:
        """The URL, the embedded Redis started if it is the one (imports redis-py).

        Raises:
            click.UsageError: No URL, and the embedded Redis is not installed.
            QueueUnavailable: The embedded Redis did not start.
        """
        from zevents.redis._client import resolve_url

        url, _ = self.resolve()
        try:
            # the spec again: a [redis.NAME] without a url means the embedded Redis
            return resolve_url(url, self.spec)
        except EmbeddedRedisMissing:
            raise click.UsageError(NO_REDIS) from None


#: What the command line says when there is no Redis at all.
NO_REDIS = (
    f"no Redis: give --redis URL (or set {URL_ENV}), or install the embedded one with "
    "pip install 'zevents[embedded]'"
)


@dataclass(frozen=True)
class QueueOptions:
    """How to open a queue by name: its Redis server and, optionally, how it was
    created (by default, as the queue recorded itself).

    Attributes:
        redis: The server.
        driver: The queue driver, or None: as recorded.
        priorities: The queue's priority levels, or None: as recorded.
        group: The stream consumer group, or None: the default group.
    """

    redis: RedisTarget = RedisTarget()
    driver: str | None = None
    priorities: tuple[int, ...] | None = None
    group: str | None = None

    @classmethod
    def from_params(cls, _ctx: click.Context, params: dict[str, Any]) -> QueueOptions:
        """Take the options ``queue_options`` added out of a command's parameters."""
        return cls(
            redis=RedisTarget(params.pop("redis")),
            driver=params.pop("driver"),
            priorities=params.pop("priorities") or None,
            group=params.pop("group", None),
        )

    def open(
        self, name: str, *, keep_finished: float | None = None, inspect: bool = False
    ) -> RedisQueue:
        """Open queue ``name`` (imports zevents.redis now; no I/O yet, unless a
        ``--group`` was given for a stream queue: it is created).

        Args:
            name: The queue.
            keep_finished: Seconds its workers keep finished records (``--keep-finished``).
            inspect: Only read: a ``--group`` that does not exist is not created.

        Raises:
            MissingExtraError: redis-py is not installed.
            click.UsageError: No Redis at all (see ``NO_REDIS``).
            QueueError: Bad options; QueueUnavailable: Redis cannot be reached.
        """
        from zevents.redis import RedisQueue

        return RedisQueue(
            name,
            self.redis.url(),
            driver=self.driver,
            priorities=self.priorities,
            group=self.group,
            keep_finished=keep_finished,
            create_group=not inspect,
        )


_QUEUE_OPTIONS = [
    redis_option,
    click.option(
        "--driver",
        type=click.Choice(DRIVERS),
        help="Queue driver; give it only to check it: by default the one the queue was "
        "created with (a new queue: list).",
    ),
    click.option(
        "--priorities",
        type=PriorityLevels(),
        metavar="LEVELS",
        help="Comma-separated priority levels, e.g. 10,5,1; give them only to check them: "
        "by default the queue's own (a new queue: 0).",
    ),
    click.option(
        "--group",
        metavar="NAME",
        help=f"Stream driver: the consumer group. [default: {DEFAULT_GROUP}]",
    ),
]


#: Adds the options naming a queue's server and driver to a click command, which gets
#: them as one ``queue_options`` argument, a ``QueueOptions``.
queue_options = option_group("queue_options", QueueOptions.from_params, _QUEUE_OPTIONS)

#: ``queue_options`` less ``--group``, for the commands that act on a whole queue, every
#: group's entries alike (purge, archive, replay, ...): ``RedisQueue`` creates a group it
#: is given, a write that would also hold back what purge may delete.
whole_queue_options = option_group("queue_options", QueueOptions.from_params, _QUEUE_OPTIONS[:-1])


#: The command-line flag of each keyword of ``RedisQueue.send``.
SEND_FLAGS = {
    "delay": "--delay",
    "priority": "--priority",
    "identifier": "--identifier",
    "serial_group": "--serial-group",
    "unique": "--unique",
}


def check_send(queue: RedisQueue, **options: Any) -> None:
    """Check keywords of ``RedisQueue.send`` against ``queue`` before anything is sent
    (reads the queue's record; writes nothing).

    Raises:
        click.BadParameter: An option the queue cannot take, named by its flag.
        ConfigError: The queue's driver or levels are not the ones asked for.
        QueueUnavailable: Redis cannot be reached.
    """
    try:
        queue.check_send(**options)
    except ConfigError as exc:
        flag = SEND_FLAGS.get(exc.option or "")
        if flag is None:
            raise
        raise click.BadParameter(str(exc), param_hint=f"'{flag}'") from exc
