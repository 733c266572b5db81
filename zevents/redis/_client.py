"""Redis connections for the queue layer (private): URLs, timeouts, error translation."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from zevents.errors import QueueError, QueueUnavailable
from zevents.redis.defaults import DEFAULT_SOCKET_TIMEOUT, URL_ENV

__all__ = [
    "connect",
    "mask_url",
    "resolve_url",
    "translated",
    "translation",
]

_PASSWORD = re.compile(r"(?P<head>://[^:/@]*:)[^@]*(?P<tail>@)")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def resolve_url(url: str | None) -> str:
    """The URL to use: ``url``, else ``$ZEVENTS_REDIS_URL``.

    Raises:
        QueueError: Neither is set.
    """
    if url:
        return url
    env = os.environ.get(URL_ENV)
    if env:
        return env
    raise QueueError(
        f"no Redis URL: pass url='redis://host:6379/0' or set the {URL_ENV} environment variable"
    )


def connect(url: str, *, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT) -> redis.Redis:
    """A client for ``url`` whose every call is bounded by ``socket_timeout`` seconds."""
    try:
        return redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=30,
        )
    except ValueError as exc:
        raise QueueError(f"bad Redis URL {mask_url(url)!r}: {exc}") from exc


@contextmanager
def translated(url: str, action: str) -> Iterator[None]:
    """Turn redis-py errors raised inside the block into zevents errors."""
    try:
        yield
    except redis.RedisError as exc:
        raise translation(url, action, exc) from exc


def translation(url: str, action: str, exc: redis.RedisError) -> QueueError:
    """The zevents error for a redis-py error (for hot paths that skip ``translated``)."""
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return QueueUnavailable(f"Redis at {mask_url(url)} is unavailable ({action}): {exc}")
    return QueueError(f"Redis at {mask_url(url)} failed ({action}): {exc}")


def as_str(value: Any) -> str:
    """A reply item as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
