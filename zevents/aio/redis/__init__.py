"""The Redis durability bridge on asyncio: ``zevents.redis``'s queues and workers, awaited.

The same queues (keys, Lua scripts, stored format) as ``zevents.redis``: a sync
producer and an async worker, or the reverse, share one. Needs the ``redis`` extra
(``pip install 'zevents[redis]'``); importing this package without it raises
``MissingExtraError`` naming that command. ``import zevents`` never imports it.
"""

from __future__ import annotations

from zevents.errors import MissingExtraError

try:
    import redis.asyncio  # noqa: F401 - checked here, used by the modules below
except ModuleNotFoundError as exc:  # only redis-py (or its parser) can be missing here
    raise MissingExtraError(
        "zevents.aio.redis needs redis-py: pip install 'zevents[redis]'"
    ) from exc

from zevents.aio.redis.consumer import Consumer
from zevents.aio.redis.queue import RedisQueue
from zevents.aio.redis.registry import WorkerRegistry
from zevents.aio.redis.worker import Worker
from zevents.redis._current import current

# Queues and their consumers; workers and their registry; the message in hand.
__all__ = ["Consumer", "RedisQueue", "Worker", "WorkerRegistry", "current"]
