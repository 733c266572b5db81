"""The Redis durability bridge: durable queues of events and the workers that run them.

Needs the ``redis`` extra: ``pip install 'zevents[redis]'``. The submodules that speak no
Redis themselves (``defaults``, ``keys``, ``retry``, ``message``, ``protocol``, ``scripts``,
``durations``, ``archive``) import without it; the names below that need redis-py are
loaded on first use, and raise ``MissingExtraError`` naming the install command when it
is missing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zevents.errors import MissingExtraError
from zevents.redis._current import current
from zevents.redis.archive import ArchivedMessage, ArchiveStore, JsonLinesArchive
from zevents.redis.durations import parse_duration, parse_until
from zevents.redis.message import FailedMessage, Message
from zevents.redis.retry import RetryPolicy

if TYPE_CHECKING:
    from zevents.redis.bridge import Bridge
    from zevents.redis.consumer import Consumer
    from zevents.redis.protocol.finished import FinishedRecord
    from zevents.redis.protocol.records import QueueRecord
    from zevents.redis.purge import PurgeResult
    from zevents.redis.queue import RedisQueue
    from zevents.redis.registry import WorkerRegistry, queues, request_shutdown, workers
    from zevents.redis.replay import HistoryEntry
    from zevents.redis.server import RedisServer
    from zevents.redis.worker import Worker

# Queues and their messages; workers; history (purge, archive and restore, replay,
# finished records); a throwaway server for tests and demos.
__all__ = [
    "ArchiveStore",
    "ArchivedMessage",
    "Bridge",
    "Consumer",
    "FailedMessage",
    "FinishedRecord",
    "HistoryEntry",
    "JsonLinesArchive",
    "Message",
    "PurgeResult",
    "QueueRecord",
    "RedisQueue",
    "RedisServer",
    "RetryPolicy",
    "Worker",
    "WorkerRegistry",
    "current",
    "parse_duration",
    "parse_until",
    "queues",
    "request_shutdown",
    "workers",
]

# name -> the module that defines it (each imports redis-py).
_LAZY = {
    "Bridge": "zevents.redis.bridge",
    "Consumer": "zevents.redis.consumer",
    "FinishedRecord": "zevents.redis.protocol.finished",
    "HistoryEntry": "zevents.redis.replay",
    "PurgeResult": "zevents.redis.purge",
    "QueueRecord": "zevents.redis.protocol.records",
    "RedisQueue": "zevents.redis.queue",
    "RedisServer": "zevents.redis.server",
    "Worker": "zevents.redis.worker",
    "WorkerRegistry": "zevents.redis.registry",
    "queues": "zevents.redis.registry",
    "request_shutdown": "zevents.redis.registry",
    "workers": "zevents.redis.registry",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'zevents.redis' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name not in ("redis", "hiredis"):
            raise
        raise MissingExtraError(
            "zevents.redis needs redis-py: pip install 'zevents[redis]'"
        ) from exc
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
