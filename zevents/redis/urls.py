"""Redis URLs: which one to use, and checking one before redis-py can misread it.

Importable without redis-py, so the command line checks ``--redis`` when it starts.
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, unquote, urlsplit

from zevents.errors import ConfigError
from zevents.redis.defaults import URL_ENV

__all__ = ["SCHEMES", "check_url", "cluster_node_url", "configured_url", "is_cluster", "mask_url"]

#: The URL schemes zevents accepts; ``redis+cluster://host:port`` (``rediss+cluster``)
#: names a Redis Cluster by one of its nodes.
SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")

_PASSWORD = re.compile(r"(?P<head>://[^:/@]*:)[^@]*(?P<tail>@)")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    return _PASSWORD.sub(r"\g<head>***\g<tail>", url)


def is_cluster(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://``)."""
    return urlsplit(url).scheme.endswith("+cluster")


def cluster_node_url(url: str) -> str:
    """The ``redis://`` (``rediss://``) URL of a ``redis+cluster://`` URL's node, as
    redis-py's cluster clients take it."""
    return url.replace("+cluster://", "://", 1)


def configured_url(url: str | None) -> str | None:
    """The URL to use: ``url``, else ``$ZEVENTS_REDIS_URL``, else ``None`` (the embedded
    Redis)."""
    return url or os.environ.get(URL_ENV) or None


def _db(text: str, url: str) -> None:
    if not text.isdigit():
        raise ConfigError(
            f"Redis URL {mask_url(url)!r} names database {text!r}: a database is a "
            "whole number (redis://host:6379/0)",
            option="url",
        )


def check_url(url: str) -> str:
    """``url`` unchanged, once it is a URL redis-py reads as written.

    redis-py silently ignores a database that is not a number (``redis://h/abc`` would
    connect to database 0), and takes a URL without a scheme for something else.

    Raises:
        ConfigError: Not a ``redis://``, ``rediss://`` or ``unix://`` URL, no host or
            socket path, a bad port, or a database that is not a whole number.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"bad Redis URL {mask_url(url)!r}: {exc}", option="url") from None
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"bad Redis URL {mask_url(url)!r}: use redis://HOST:PORT/DB, rediss://..., "
            "unix:///path/to/redis.sock or redis+cluster://HOST:PORT",
            option="url",
        )
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigError(f"Redis URL {mask_url(url)!r} has no socket path", option="url")
        if parts.netloc and "@" not in parts.netloc:
            raise ConfigError(
                f"Redis URL {mask_url(url)!r}: a unix URL takes an absolute path, "
                "unix:///path/to/redis.sock",
                option="url",
            )
    else:
        if not parts.hostname:
            raise ConfigError(f"Redis URL {mask_url(url)!r} has no host", option="url")
        if port is not None and not 1 <= port <= 65535:
            raise ConfigError(f"Redis URL {mask_url(url)!r} has a bad port", option="url")
        path = unquote(parts.path).strip("/")
        if path:
            _db(path, url)
        if parts.scheme.endswith("+cluster") and path not in ("", "0"):
            raise ConfigError(
                f"Redis URL {mask_url(url)!r}: a cluster has only database 0", option="url"
            )
    for value in parse_qs(parts.query).get("db", []):
        _db(value, url)
    return url
