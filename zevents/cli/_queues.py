"""What ``bridge``, ``worker`` and ``queue`` share: the options naming a Redis queue.

zevents.redis is imported only when a queue is opened, so the rest of the command line
works without the ``redis`` extra (``zevents.redis.defaults`` needs no redis-py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from zevents.cli._options import option_group
from zevents.redis.defaults import DEFAULT_GROUP, DRIVERS, URL_ENV

if TYPE_CHECKING:
    from zevents.redis import RedisQueue

__all__ = ["QueueOptions", "queue_options", "redis_url_option"]


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


#: ``--redis-url``, falling back to ``$ZEVENTS_REDIS_URL``.
redis_url_option = click.option(
    "--redis-url",
    envvar=URL_ENV,
    metavar="URL",
    help=f"redis:// URL of the server. [default: ${URL_ENV}]",
)


@dataclass(frozen=True)
class QueueOptions:
    """How to open a queue by name: its Redis server and how it was created.

    Attributes:
        redis_url: The server; ``None`` reads the environment variable.
        driver: The queue driver.
        priorities: The queue's priority levels; ``None`` (or none) is the single level 0.
        group: The stream consumer group.
    """

    redis_url: str | None = None
    driver: str = "list"
    priorities: tuple[int, ...] | None = None
    group: str = DEFAULT_GROUP

    @classmethod
    def from_params(cls, _ctx: click.Context, params: dict[str, Any]) -> QueueOptions:
        """Take the options ``queue_options`` added out of a command's parameters."""
        return cls(
            redis_url=params.pop("redis_url"),
            driver=params.pop("driver"),
            priorities=params.pop("priorities"),
            group=params.pop("group"),
        )

    def open(self, name: str) -> RedisQueue:
        """Open queue ``name`` (imports zevents.redis now).

        Raises:
            MissingExtraError: redis-py is not installed.
            QueueError: Bad options or no URL; QueueUnavailable: Redis cannot be reached.
        """
        from zevents.redis import RedisQueue

        return RedisQueue(
            name,
            self.redis_url,
            driver=self.driver,
            priorities=self.priorities or None,
            group=self.group,
        )


_QUEUE_OPTIONS = [
    redis_url_option,
    click.option(
        "--driver",
        type=click.Choice(DRIVERS),
        default=QueueOptions.driver,
        show_default=True,
        help="Queue driver; use the one the queue was created with.",
    ),
    click.option(
        "--priorities",
        type=PriorityLevels(),
        metavar="LEVELS",
        help="Comma-separated priority levels of the queue, e.g. 10,5,1. [default: 0]",
    ),
    click.option(
        "--group",
        default=DEFAULT_GROUP,
        show_default=True,
        metavar="NAME",
        help="Stream driver: the consumer group.",
    ),
]


#: Adds the options naming a queue's server and driver to a click command, which gets
#: them as one ``queue_options`` argument, a ``QueueOptions``.
queue_options = option_group("queue_options", QueueOptions.from_params, _QUEUE_OPTIONS)
