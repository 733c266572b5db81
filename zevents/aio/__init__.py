"""asyncio: the same fabric, options and wire protocol, with coroutines for every wait.

``EventListener`` sends (``await listener.send(event, payload)``), ``EventService``
receives (``await service.run()``) and fires events with ``Bus.fire_async``. Both share
their frames, tokens, confirmation bookkeeping and options with the sync classes; only
the waits differ. See docs/asyncio.md.

``zevents.aio.redis`` holds the Redis queue and worker on redis-py's asyncio client
(extra ``zevents[redis]``); see docs/asyncio-redis.md.
"""

from __future__ import annotations

from zevents.aio.eventsocket import AsyncEventSocket
from zevents.aio.listener import EventListener
from zevents.aio.receiving import ReceivingSocket
from zevents.aio.service import EventService

__all__ = ["AsyncEventSocket", "EventListener", "EventService", "ReceivingSocket"]
