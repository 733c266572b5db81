"""The sans-I/O protocol of the queue: what to send Redis, and what its replies mean.

Drivers build the Lua script calls and commands of every queue operation and parse
their replies, as plans (``steps``); the sync front end (``zevents.redis.queue``,
``consumer``, ``registry``) runs them on redis-py's client, and an asyncio one can run the
same plans on redis-py's asyncio client. Importable without redis-py.
"""

from __future__ import annotations

from zevents.redis.keys import QueueKeys
from zevents.redis.message import BodyCodec
from zevents.redis.protocol.base import QUEUE_BATCH, BaseDriver, Driver, Fields, Reader, SendItem
from zevents.redis.protocol.core import CoreDriver
from zevents.redis.protocol.steps import Batch, Call, Command, Plan, Step, single
from zevents.redis.protocol.stream import StreamDriver

__all__ = [
    "QUEUE_BATCH",
    "BaseDriver",
    "Batch",
    "Call",
    "Command",
    "CoreDriver",
    "Driver",
    "Fields",
    "Plan",
    "Reader",
    "SendItem",
    "Step",
    "StreamDriver",
    "make_driver",
    "single",
]


def make_driver(
    kind: str,
    keys: QueueKeys,
    default_priority: int,
    codec: BodyCodec,
    *,
    group: str,
    max_reclaims: int,
) -> Driver:
    """The driver named ``kind`` (one of ``zevents.redis.defaults.DRIVERS``); ``group``
    and ``max_reclaims`` are for the stream driver."""
    if kind == "stream":
        return StreamDriver(keys, default_priority, codec, group, max_reclaims)
    return CoreDriver(keys, kind, default_priority, codec)
