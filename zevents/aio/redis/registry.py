"""``WorkerRegistry`` on asyncio: heartbeats, the live-worker list, shutdown requests."""

from __future__ import annotations

from typing import Any

from zevents.aio.redis._client import AsyncRunner, configured
from zevents.redis.defaults import DEFAULT_PREFIX
from zevents.redis.protocol import registry as protocol
from zevents.redis.protocol.records import QueueRecord, read_records

__all__ = ["WorkerRegistry"]


class WorkerRegistry:
    """The workers of one Redis server and key prefix, awaited: the keys
    ``zevents.redis.WorkerRegistry`` uses, so sync and async workers are listed and
    stopped alike. ``queue.registry()`` gives the one on a queue's own connection.

    Args:
        url: Where Redis is; ``None``: the named ``connection``, else
            ``$ZEVENTS_REDIS_URL``, else ``[redis.default]`` of the config file, else
            the embedded Redis.
        prefix: The queues' key prefix.
        connection: The name of a ``[redis.NAME]`` table of the config file.

    Raises:
        ConfigError: A URL redis-py would misread, or an unknown connection.
    """

    def __init__(
        self, url: str | None = None, *, prefix: str = DEFAULT_PREFIX, connection: str | None = None
    ) -> None:
        self._runner = AsyncRunner(None, configured(url, connection))
        self._owns_client, self.prefix = True, prefix

    @classmethod
    def on(cls, runner: AsyncRunner, prefix: str) -> WorkerRegistry:
        """The registry of ``prefix`` on a connection some queue holds (not closed here)."""
        registry = cls.__new__(cls)
        registry.prefix = prefix
        registry._owns_client = False
        registry._runner = runner
        return registry

    def __repr__(self) -> str:
        return f"<aio WorkerRegistry {self.prefix!r}>"

    async def time_ms(self) -> int:
        """The Redis server clock, in milliseconds."""
        return await self._runner.run(protocol.time_ms(), "read the clock")

    async def beat(self, worker_id: str, info: dict[str, Any], ttl_ms: int) -> int:
        """Record a heartbeat of ``worker_id``, stale after ``ttl_ms``; returns its time."""
        plan = protocol.beat(self.prefix, worker_id, info, ttl_ms)
        return await self._runner.run(plan, "heartbeat")

    async def forget(self, worker_id: str) -> None:
        """Remove the entry of a worker that stopped."""
        await self._runner.run(protocol.forget(self.prefix, worker_id), "forget a worker")

    async def request_shutdown(self) -> int:
        """Ask every worker started before now (Redis clock) to stop after its messages;
        returns the Redis time of the request (ms)."""
        return await self._runner.run(protocol.request_shutdown(self.prefix), "request shutdown")

    async def shutdown_requested_at(self) -> int:
        """The Redis time (ms) of the last shutdown request, 0 if none."""
        plan = protocol.shutdown_requested_at(self.prefix)
        return await self._runner.run(plan, "read shutdown")

    async def workers(self, *, prune: bool = True) -> list[dict[str, Any]]:
        """The live workers, from their heartbeats (see
        ``zevents.redis.WorkerRegistry.workers``); ``prune=False`` writes nothing."""
        plan = protocol.workers(self.prefix, prune=prune)
        return await self._runner.run(plan, "list workers")

    async def queues(self) -> list[QueueRecord]:
        """The queues used under this prefix (their records), by name."""
        return await self._runner.run(read_records(self.prefix), "list queues")

    async def aclose(self) -> None:
        """Close the connections this registry opened."""
        if self._owns_client:
            await self._runner.aclose()
