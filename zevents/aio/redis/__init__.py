"""The Redis durability bridge on asyncio: ``zevents.redis``'s queues and workers, awaited.

The same queues (keys, Lua scripts, stored format) as ``zevents.redis``: a sync
producer and an async worker, or the reverse, share one. Needs the ``redis`` extra:
``pip install 'zevents[redis]'``; the names below load redis-py on first use and raise
``MissingExtraError`` naming the install command when it is missing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zevents.errors import MissingExtraError
from zevents.redis._current import current

if TYPE_CHECKING:
    from zevents.aio.redis.consumer import Consumer
    from zevents.aio.redis.queue import RedisQueue
    from zevents.aio.redis.registry import WorkerRegistry
    from zevents.aio.redis.worker import Worker

# Queues and their consumers; workers and their registry; the message in hand.
__all__ = ["Consumer", "RedisQueue", "Worker", "WorkerRegistry", "current"]

# name -> the module that defines it (each imports redis-py).
_LAZY = {
    "Consumer": "zevents.aio.redis.consumer",
    "RedisQueue": "zevents.aio.redis.queue",
    "Worker": "zevents.aio.redis.worker",
    "WorkerRegistry": "zevents.aio.redis.registry",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'zevents.aio.redis' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name not in ("redis", "hiredis"):
            raise
        raise MissingExtraError(
            "zevents.aio.redis needs redis-py: pip install 'zevents[redis]'"
        ) from exc
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
