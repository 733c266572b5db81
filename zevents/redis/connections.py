"""Named Redis connections from the config file (``[redis.NAME]`` tables).

A config file (``./zevents.toml``, ``[tool.zevents]`` in ``pyproject.toml``, or the one
``$ZEVENTS_CONFIG`` names) can name several Redis servers::

    [redis.default]
    url = "redis://127.0.0.1:6379"
    db = 0

    [redis.reports]
    url = "redis://reports.internal:6379"
    password = "..."
    max_attempts = 10
    backoff = "linear"

``RedisQueue(name, connection="reports")`` and ``--redis reports`` pick one; with no
URL at all, ``[redis.default]`` is used when the file has it. Importable without
redis-py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from zevents.config import find_table
from zevents.errors import ConfigError
from zevents.redis.defaults import URL_ENV
from zevents.redis.retry import RetryPolicy
from zevents.redis.urls import check_url

__all__ = ["DEFAULT_CONNECTION", "RedisConnection", "redis_connection", "resolve_redis"]

#: The connection used when no URL is given at all, if the config file names it.
DEFAULT_CONNECTION = "default"

_RETRY_KEYS = {
    "max_attempts": "max_attempts",
    "backoff": "backoff",
    "backoff_base": "base",
    "backoff_cap": "cap",
    "jitter": "jitter",
}
_KEYS = {"url", "db", "password", *_RETRY_KEYS}


@dataclass(frozen=True)
class RedisConnection:
    """A named Redis connection.

    Attributes:
        name: Its name in the config file.
        url: Its URL, ``db`` and ``password`` folded in; ``None``: the embedded Redis.
        retry: The retry policy of workers on it (the file's ``max_attempts`` and
            backoff settings over the defaults).
    """

    name: str
    url: str | None
    retry: RetryPolicy


def _with(url: str, db: object, password: object, name: str) -> str:
    parts = urlsplit(url)
    netloc, path = parts.netloc, parts.path
    if password is not None:
        if not isinstance(password, str):
            raise ConfigError(f"redis.{name}: password must be a string", option="password")
        user = parts.username or ""
        host = netloc.rpartition("@")[2]
        netloc = f"{quote(user)}:{quote(password, safe='')}@{host}"
    query = parts.query
    if db is not None:
        if parts.scheme == "unix":
            query = "&".join([q for q in query.split("&") if q and not q.startswith("db=")])
            query = f"{query}&db={db}" if query else f"db={db}"
        else:
            path = f"/{db}"
    # by hand: urlunsplit drops the "//" of a URL with no host (unix:///run/redis.sock)
    rebuilt = f"{parts.scheme}://{netloc}{path}"
    if query:
        rebuilt += f"?{query}"
    return f"{rebuilt}#{parts.fragment}" if parts.fragment else rebuilt


def _connection(name: str, table: dict[str, Any], source: str) -> RedisConnection:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(
            f"redis.{name} in {source}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(_KEYS))}",
            option="redis",
        )
    url, db = table.get("url"), table.get("db")
    if db is not None and (isinstance(db, bool) or not isinstance(db, int) or db < 0):
        raise ConfigError(f"redis.{name}: db must be a whole number, not {db!r}", option="db")
    if url is None and (db is not None or table.get("password") is not None):
        raise ConfigError(f"redis.{name}: db and password need a url", option="url")
    if url is not None:
        if not isinstance(url, str):
            raise ConfigError(f"redis.{name}: url must be a string", option="url")
        url = check_url(_with(check_url(url), table.get("db"), table.get("password"), name))
    retry = RetryPolicy(**{_RETRY_KEYS[k]: v for k, v in table.items() if k in _RETRY_KEYS})
    return RedisConnection(name, url, retry)


def redis_connection(
    name: str, path: str | os.PathLike[str] | None = None
) -> RedisConnection | None:
    """Connection ``name`` of the config file, or None when no file names it.

    Raises:
        ConfigError: The file is malformed, or the table has bad keys or values.
    """
    table, searched = find_table("redis", name, path)
    if table is None:
        return None
    return _connection(name, table, searched[-1])


def resolve_redis(
    spec: str | None, *, path: str | os.PathLike[str] | None = None
) -> tuple[str | None, RedisConnection | None]:
    """What ``--redis SPEC`` or ``connection=SPEC`` means.

    Args:
        spec: A URL, the name of a connection, or None: ``$ZEVENTS_REDIS_URL``, else the
            file's ``[redis.default]``, else the embedded Redis.
        path: The config file (default: the usual search).

    Returns:
        The URL (None: the embedded Redis) and the connection it came from, if any.

    Raises:
        ConfigError: ``spec`` is neither a URL nor a connection of the config file, or a
            URL redis-py would misread.
    """
    if spec is None:
        env = os.environ.get(URL_ENV)
        if env:
            return check_url(env), None
        default = redis_connection(DEFAULT_CONNECTION, path)
        return (default.url, default) if default is not None else (None, None)
    if "://" in spec:
        return check_url(spec), None
    found = redis_connection(spec, path)
    if found is None:
        _, searched = find_table("redis", spec, path)
        raise ConfigError(
            f"{spec!r} is neither a Redis URL (redis://HOST:PORT/DB) nor a connection "
            f"[redis.{spec}] of the config file; searched: {', '.join(searched)}",
            option="redis",
        )
    return found.url, found
