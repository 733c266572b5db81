"""zevents: a ZeroMQ inter-process event fabric.

Fire a named event on a bus; ``EventListener`` receivers forward it over ZeroMQ to
another process, where an ``EventService`` fires it again on that process's bus.
The Redis durability bridge lives in ``zevents.redis`` (extra ``zevents[redis]``).
"""

from __future__ import annotations

from zevents import events
from zevents.config import ListenerOptions, load_connection
from zevents.errors import (
    ConfigError,
    DecodeError,
    DeliveryError,
    DeliveryTimeout,
    EncodeError,
    EndpointError,
    MissingExtraError,
    PermanentError,
    QueueError,
    QueueUnavailable,
    ReceiverError,
    RemoteError,
    ServiceError,
    WaitingError,
    ZeventsError,
)
from zevents.eventbus import Bus, current_bus, default_bus
from zevents.eventsocket import EventSocket, Received
from zevents.listener import EventListener
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
    "load_connection",
    # serializers
    "JsonSerializer",
    "Serializer",
    # errors
    "ConfigError",
    "DecodeError",
    "DeliveryError",
    "DeliveryTimeout",
    "EncodeError",
    "EndpointError",
    "MissingExtraError",
    "PermanentError",
    "QueueError",
    "QueueUnavailable",
    "ReceiverError",
    "RemoteError",
    "ServiceError",
    "WaitingError",
    "ZeventsError",
    # metadata
    "__version__",
]
