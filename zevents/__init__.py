"""zevents: a ZeroMQ inter-process event fabric.

Fire a named event on a bus; ``EventListener`` receivers forward it over ZeroMQ to
another process, where an ``EventService`` fires it again on that process's bus.
The Redis durability bridge lives in ``zevents.redis`` (extra ``zevents[redis]``).
"""

from __future__ import annotations

from zevents import errors, events
from zevents.config import ListenerOptions, load_connection

# Every error class, as listed in errors.__all__ (the tree is drawn in zevents.errors).
from zevents.errors import *  # noqa: F403
from zevents.eventbus import Bus, current_bus, default_bus
from zevents.eventsocket import EventSocket, Received
from zevents.listener import EventListener
from zevents.receiving import ReceivingSocket
from zevents.serializers import JsonSerializer, Serializer
from zevents.service import EventService

__version__ = "0.1.0"

#: The module-level default bus.
bus = default_bus

# Grouped by concept, not sorted.
__all__ = [  # noqa: RUF022
    # the bus
    "Bus",
    "bus",
    "current_bus",
    "default_bus",
    "events",
    # sockets, listeners, services
    "EventListener",
    "EventService",
    "EventSocket",
    "ListenerOptions",
    "Received",
    "ReceivingSocket",
    "load_connection",
    # serializers
    "JsonSerializer",
    "Serializer",
    # metadata
    "__version__",
]
# errors
__all__ += errors.__all__
