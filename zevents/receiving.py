"""``ReceivingSocket``: the socket an ``EventService`` receives on, built from options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zevents._sockets import LazySocket, SocketOwner
from zevents.config import ListenerOptions
from zevents.listener import EventListener, options_of
from zevents.serializers import resolve_serializer

__all__ = ["ReceivingSocket", "receiving_socket"]


class ReceivingSocket(SocketOwner):
    """The receiving side of a service: one socket made from ``ListenerOptions``.

    Created lazily, like a listener's, and safe across fork. With no ``socket_type``
    it is PULL, or ROUTER (bound) / DEALER (connected) when ``confirmed``.

    Args:
        options: The validated options.
    """

    def __init__(self, options: ListenerOptions) -> None:
        self.options = options
        self.serializer = resolve_serializer(options.serializer)
        self._socket = LazySocket(options, self.serializer, "receive")

    def __repr__(self) -> str:
        return f"<ReceivingSocket receiving {self.socket_type} {self.options.endpoints}>"


def receiving_socket(
    spec: ReceivingSocket | EventListener | Mapping[str, Any] | str,
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
    if isinstance(spec, EventListener):
        return ReceivingSocket(spec.options)
    return ReceivingSocket(options_of(spec, {}))
