"""Worker heartbeats, the worker registry and remote shutdown requests."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import redis

from zevents.redis._client import as_str, connect, resolve_url, translated
from zevents.redis.defaults import DEFAULT_PREFIX
from zevents.redis.keys import shutdown_key, workers_key
from zevents.redis.scripts import script_source

logger = logging.getLogger(__name__)

__all__ = ["beat", "redis_time_ms", "request_shutdown", "shutdown_requested_at", "workers"]


def redis_time_ms(client: redis.Redis) -> int:
    """The Redis server clock, in milliseconds."""
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def beat(
    client: redis.Redis,
    worker_id: str,
    info: dict[str, Any],
    ttl_ms: int,
    prefix: str = DEFAULT_PREFIX,
) -> None:
    """Record one heartbeat of ``worker_id`` (stale after ``ttl_ms``)."""
    script = client.register_script(script_source("registry_beat.lua"))
    script(keys=[workers_key(prefix)], args=[worker_id, orjson.dumps(info), ttl_ms])


def forget(client: redis.Redis, worker_id: str, prefix: str = DEFAULT_PREFIX) -> None:
    """Remove a worker's entry (it stopped)."""
    client.hdel(workers_key(prefix), worker_id)


def shutdown_requested_at(client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> int:
    """The Redis time (ms) of the last shutdown request, 0 if none."""
    value = client.get(shutdown_key(prefix))
    return int(value) if value else 0


def request_shutdown(
    url: str | None = None, *, prefix: str = DEFAULT_PREFIX, client: Any = None
) -> int:
    """Ask every worker started before now (Redis clock) to stop after its message.

    Args:
        url: ``redis://`` URL; ``None`` reads ``$ZEVENTS_REDIS_URL``.
        prefix: The key prefix the workers use.
        client: An existing redis-py client (e.g. a ``RedisCluster``) instead of
            ``url``; not closed here.

    Returns:
        The Redis time of the request, in milliseconds.
    """
    url = resolve_url(url) if client is None else (url or "redis://(client)")
    own = client is None
    if own:
        client = connect(url)
    try:
        with translated(url, "request shutdown"):
            script = client.register_script(script_source("registry_shutdown.lua"))
            return int(script(keys=[shutdown_key(prefix)]))
    finally:
        if own:
            client.close()


def workers(
    url: str | None = None, *, prefix: str = DEFAULT_PREFIX, client: Any = None
) -> list[dict[str, Any]]:
    """The live workers, from their heartbeats; stale entries are pruned.

    ``client`` is an existing redis-py client (e.g. a ``RedisCluster``) to use instead
    of ``url``; it is not closed here.

    Each entry holds ``id``, ``host``, ``pid``, ``queues``, ``status`` (idle or
    processing), ``message``, ``event``, ``message_status``, ``percent``, ``processed``,
    ``started_at`` and ``beat`` (Redis times in ms).
    """
    url = resolve_url(url) if client is None else (url or "redis://(client)")
    own = client is None
    if own:
        client = connect(url)
    try:
        with translated(url, "list workers"):
            raw = client.hgetall(workers_key(prefix))
            now = redis_time_ms(client)
            live: list[dict[str, Any]] = []
            stale: list[bytes | str] = []
            for field, value in raw.items():
                try:
                    info = orjson.loads(value)
                except orjson.JSONDecodeError:
                    stale.append(field)
                    continue
                if int(info.get("expires", 0)) < now:
                    stale.append(field)
                else:
                    info.setdefault("id", as_str(field))
                    live.append(info)
            if stale:
                client.hdel(workers_key(prefix), *stale)
    finally:
        if own:
            client.close()
    live.sort(key=lambda w: str(w.get("id")))
    return live
