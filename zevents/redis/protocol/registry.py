"""The worker registry's protocol: heartbeats, the live-worker list, shutdown requests.

The registry is one hash of heartbeats (``<prefix>workers``) and one key holding the
time of the last shutdown request (``<prefix>shutdown``), shared by every queue under a
prefix. Sans-I/O: every function returns a plan.
"""

from __future__ import annotations

from typing import Any

import orjson

from zevents.redis.keys import shutdown_key, workers_key
from zevents.redis.protocol.base import as_str
from zevents.redis.protocol.steps import Call, Command, Plan, single, time_ms

__all__ = ["beat", "forget", "request_shutdown", "shutdown_requested_at", "time_ms", "workers"]


def beat(prefix: str, worker_id: str, info: dict[str, Any], ttl_ms: int) -> Plan[int]:
    """Record one heartbeat of ``worker_id`` (stale after ``ttl_ms``); prune stale ones.

    Returns the Redis time of the beat (ms).
    """
    call = Call("registry_beat.lua", [workers_key(prefix)], [worker_id, orjson.dumps(info), ttl_ms])
    return single(call, int)


def forget(prefix: str, worker_id: str) -> Plan[None]:
    """Remove a worker's entry (it stopped)."""
    yield Command("hdel", (workers_key(prefix), worker_id))


def request_shutdown(prefix: str) -> Plan[int]:
    """Ask every worker started before now (Redis clock) to stop; returns that time."""
    return single(Call("registry_shutdown.lua", [shutdown_key(prefix)], []), int)


def shutdown_requested_at(prefix: str) -> Plan[int]:
    """The Redis time (ms) of the last shutdown request, 0 if none."""
    return single(Command("get", (shutdown_key(prefix),)), lambda value: int(value or 0))


def workers(prefix: str, *, prune: bool = True) -> Plan[list[dict[str, Any]]]:
    """The live workers, from their heartbeats, sorted by id; stale entries are removed
    unless ``prune`` is False (an inspection that must not write)."""
    raw = yield Command("hgetall", (workers_key(prefix),))
    now = yield from time_ms()
    live: list[dict[str, Any]] = []
    stale: list[Any] = []
    for field, value in raw.items():
        try:
            info = orjson.loads(value)
        except orjson.JSONDecodeError:
            stale.append(field)
            continue
        if not isinstance(info, dict) or int(info.get("expires", 0)) < now:
            stale.append(field)
        else:
            info.setdefault("id", as_str(field))
            live.append(info)
    if stale and prune:
        yield Command("hdel", (workers_key(prefix), *stale))
    live.sort(key=lambda w: str(w.get("id")))
    return live
