"""``WorkerRegistry``: worker heartbeats, the live-worker list and shutdown requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from zevents.redis._client import Runner, connect, resolve_url
from zevents.redis.defaults import DEFAULT_PREFIX
from zevents.redis.protocol import registry as protocol
from zevents.redis.protocol.records import QueueRecord, read_records

__all__ = ["WorkerRegistry", "queues", "request_shutdown", "workers"]

T = TypeVar("T")


class WorkerRegistry:
    """The workers of one Redis server and key prefix: who runs, and whether to stop.

    Every worker of the queues under ``prefix`` beats into the hash ``<prefix>workers``
    and stops when ``<prefix>shutdown`` holds a time after its start.

    Args:
        url: ``redis://`` URL; ``None`` reads ``$ZEVENTS_REDIS_URL`` (unless ``client``).
        prefix: The key prefix of the queues.
        client: An existing redis-py client (e.g. a ``RedisCluster``) instead of ``url``;
            not closed here.
        connection: A ``[redis.NAME]`` connection of the config file instead of ``url``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        client: Any = None,
        connection: str | None = None,
    ) -> None:
        self.prefix = prefix
        self._owns_client = client is None
        self.url = resolve_url(url, connection) if client is None else (url or "redis://(client)")
        self.client = connect(self.url) if client is None else client
        self._runner = Runner(self.client, self.url)

    def __repr__(self) -> str:
        return f"<WorkerRegistry {self.prefix!r}>"

    def time_ms(self) -> int:
        """The Redis server clock, in milliseconds."""
        return self._runner.run(protocol.time_ms(), "read the clock")

    def beat(self, worker_id: str, info: dict[str, Any], ttl_ms: int) -> int:
        """Record a heartbeat of ``worker_id``, stale after ``ttl_ms``; returns its time."""
        return self._runner.run(protocol.beat(self.prefix, worker_id, info, ttl_ms), "heartbeat")

    def forget(self, worker_id: str) -> None:
        """Remove the entry of a worker that stopped."""
        self._runner.run(protocol.forget(self.prefix, worker_id), "forget a worker")

    def request_shutdown(self) -> int:
        """Ask every worker started before now (Redis clock) to stop after its message.

        Returns:
            The Redis time of the request, in milliseconds.
        """
        return self._runner.run(protocol.request_shutdown(self.prefix), "request shutdown")

    def shutdown_requested_at(self) -> int:
        """The Redis time (ms) of the last shutdown request, 0 if none."""
        return self._runner.run(protocol.shutdown_requested_at(self.prefix), "read shutdown")

    def workers(self, *, prune: bool = True) -> list[dict[str, Any]]:
        """The live workers, from their heartbeats; the entries of workers that stopped
        beating are removed, unless ``prune`` is False (the command line's inspection
        never writes).

        Each entry holds ``id``, ``host``, ``pid``, ``queues``, ``status`` (idle or
        processing), ``message``, ``event``, ``message_status``, ``percent``,
        ``processed``, ``started_at`` and ``beat`` (Redis times in ms).
        """
        return self._runner.run(protocol.workers(self.prefix, prune=prune), "list workers")

    def queues(self) -> list[QueueRecord]:
        """The queues used under this prefix (their records), by name."""
        return self._runner.run(read_records(self.prefix), "list queues")

    def close(self) -> None:
        """Close the connections this registry opened."""
        if self._owns_client:
            self.client.close()


def _once(url: str | None, prefix: str, client: Any, use: Callable[[WorkerRegistry], T]) -> T:
    registry = WorkerRegistry(url, prefix=prefix, client=client)
    try:
        return use(registry)
    finally:
        registry.close()


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
    return _once(url, prefix, client, WorkerRegistry.request_shutdown)


def workers(
    url: str | None = None, *, prefix: str = DEFAULT_PREFIX, client: Any = None, prune: bool = True
) -> list[dict[str, Any]]:
    """The live workers, from their heartbeats (see ``WorkerRegistry.workers``)."""
    return _once(url, prefix, client, lambda registry: registry.workers(prune=prune))


def queues(
    url: str | None = None, *, prefix: str = DEFAULT_PREFIX, client: Any = None
) -> list[QueueRecord]:
    """The queues used under ``prefix`` (see ``WorkerRegistry.queues``)."""
    return _once(url, prefix, client, WorkerRegistry.queues)
