"""What the history and failed-store modules use of a ``RedisQueue`` (private): they
take the queue as this protocol, so none of them imports ``zevents.redis.queue``."""

from __future__ import annotations

from typing import Protocol, TypeVar

from zevents.redis.consumer import PlanRunner
from zevents.redis.message import BodyCodec
from zevents.redis.protocol import Driver, Plan
from zevents.redis.protocol.records import QueueShape

__all__ = ["QueueParts"]

T = TypeVar("T")


class QueueParts(Protocol):
    """What the history and failed-store methods use of a ``RedisQueue``."""

    name: str
    codec: BodyCodec
    _prepared: bool

    @property
    def runner(self) -> PlanRunner: ...
    @property
    def shape(self) -> QueueShape: ...
    @property
    def driver(self) -> Driver: ...
    def exists(self) -> bool: ...
    def _prepare(self) -> None: ...
    def _write(self, plan: Plan[T], action: str) -> T: ...
