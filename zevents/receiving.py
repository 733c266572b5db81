"""``ReceivingSocket``: the socket an ``EventService`` receives on, built from options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zevents._opening import S
from zevents._sockets import LazySocket, SocketOwner
from zevents.config import ListenerOptions
from zevents.eventsocket import EventSocket
from zevents.listener import ListenerBase, options_of
from zevents.serializers import resolve_serializer

__all__ = ["ReceivingSocket", "ReceivingSocketBase", "options_for_receiving", "receiving_socket"]


class ReceivingSocketBase(SocketOwner[S]):
    """The receiving side of a service, sync or asyncio (subclasses set
    ``socket_class``); see ``ReceivingSocket``."""

    socket_class: type[S]

    def __init__(self, options: ListenerOptions) -> None:
        self.options = options
        self.serializer = resolve_serializer(options.serializer)
        self._socket = LazySocket(options, self.serializer, "receive", self.socket_class)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} receiving {self.socket_type} {self.options.endpoints}>"


class ReceivingSocket(ReceivingSocketBase[EventSocket]):
    """The receiving side of a service: one socket made from ``ListenerOptions``.

    Created lazily, like a listener's, and safe across fork. With no ``socket_type``
    it is PULL, or ROUTER (bound) / DEALER (connected) when ``confirmed``.

    Args:
        options: The validated options.
    """

    socket_class = EventSocket


def options_for_receiving(spec: ListenerBase[Any] | Mapping[str, Any] | str) -> ListenerOptions:
    """The options of a listener (sync or asyncio: the listener itself keeps sending),
    a mapping of options, or a config connection name.

    Raises:
        ConfigError: Invalid options or an unknown connection.
    """
    if isinstance(spec, ListenerBase):
        return spec.options
    return options_of(spec, {})


def receiving_socket(
    spec: ReceivingSocket | ListenerBase[Any] | Mapping[str, Any] | str,
) -> ReceivingSocket:
    """The receiving socket for ``spec``.

    Args:
        spec: A ``ReceivingSocket`` (returned as is), an ``EventListener`` (its options
            are used; the listener itself keeps sending), a mapping of options, or the
            name of a connection in the config file.

    Raises:
        ConfigError: Invalid options or an unknown connection.
    """
    if isinstance(spec, ReceivingSocket):
        return spec
    return ReceivingSocket(options_for_receiving(spec))
