"""The Redis durability bridge: durable queues of events and the workers that run them.

Needs the ``redis`` extra: ``pip install 'zevents[redis]'``.
"""

from __future__ import annotations

try:
    import redis as _redis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    from zevents.errors import MissingExtraError

    raise MissingExtraError("zevents.redis needs redis-py: pip install 'zevents[redis]'") from exc

from zevents.redis.current import current
from zevents.redis.heartbeat import request_shutdown, workers
from zevents.redis.message import FailedMessage, Message
from zevents.redis.queue import RedisQueue
from zevents.redis.retry import RetryPolicy
from zevents.redis.server import RedisServer
from zevents.redis.worker import Worker

# Queues and their messages; workers; a throwaway server for tests and demos.
__all__ = [
    "FailedMessage",
    "Message",
    "RedisQueue",
    "RedisServer",
    "RetryPolicy",
    "Worker",
    "current",
    "request_shutdown",
    "workers",
]
