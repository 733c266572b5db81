"""The keyword options of the async queue (private), as typed mappings, and the
worker's count options checked.

``RedisQueue(name, url, **options)`` and ``queue.send(event, payload, **options)`` take
exactly the keywords of their sync counterparts; naming them once here, as
``TypedDict``s, keeps them typed without a second copy of each signature.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypedDict

from zevents.errors import ConfigError

__all__ = ["QueueOptions", "SendOptions", "check_counts", "check_keywords"]


class QueueOptions(TypedDict, total=False):
    """The keywords of ``RedisQueue`` after ``name`` and ``url`` (see its docstring)."""

    driver: str | None
    priorities: Iterable[int] | None
    group: str | None
    consumer: str | None
    default_priority: int | None
    prefix: str
    max_reclaims: int
    socket_timeout: float
    client: Any
    serializer: Any
    connection: str | None
    create_group: bool
    keep_finished: str | float | None
    min_replicas: int
    replica_timeout: float


class SendOptions(TypedDict, total=False):
    """The keywords of ``RedisQueue.send`` (see ``zevents.redis.RedisQueue.send``)."""

    delay: float
    execute_at: datetime | None
    priority: int | None
    identifier: str | None
    serial_group: str | None
    unique: bool
    min_replicas: int | None


def check_keywords(given: Mapping[str, Any], known: type, what: str) -> None:
    """Refuse keywords ``known`` (a ``TypedDict``) does not name, as a signature would.

    Raises:
        ConfigError: An unknown keyword (``option`` names it).
    """
    unknown = sorted(set(given) - set(known.__annotations__))
    if unknown:
        raise ConfigError(f"{what} got unknown keyword(s): {', '.join(unknown)}", option=unknown[0])


def check_counts(**counts: object) -> None:
    """Each of ``counts`` is a whole number of at least 1 (``max_messages`` may be None).

    Raises:
        ConfigError: One is not (``option`` names it).
    """
    for option, value in counts.items():
        whole = isinstance(value, int) and not isinstance(value, bool)
        if (value is None and option == "max_messages") or (whole and value >= 1):  # type: ignore[operator]
            continue
        raise ConfigError(f"{option} must be a whole number >= 1, not {value!r}", option=option)
