"""Queue drivers: how messages are stored and taken, one module per Redis structure."""

from __future__ import annotations

from zevents.redis.drivers.base import Driver, SendItem
from zevents.redis.drivers.core import CoreDriver
from zevents.redis.drivers.stream import StreamDriver

__all__ = ["CoreDriver", "Driver", "SendItem", "StreamDriver"]
