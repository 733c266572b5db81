"""``ReceivingSocket``: the socket an ``EventService`` receives on, built from options."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zevents._sockets import LazySocket
from zevents.config import ListenerOptions
from zevents.eventsocket import EventSocket
from zevents.listener import EventListener, options_of
from zevents.serializers import resolve_serializer

__all__ = ["ReceivingSocket", "receiving_socket"]


class ReceivingSocket:
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

    @property
    def socket_type(self) -> str:
        """The socket type it receives on."""
        return self._socket.socket_type

    @property
    def is_open(self) -> bool:
        """Whether the socket exists (it is created lazily)."""
        return self._socket.is_open

    @property
    def socket(self) -> EventSocket:
        """The socket, created (bound and connected) on first use.

        Raises:
            EndpointError: An endpoint cannot be bound or connected.
        """
        return self._socket.socket

    @property
    def endpoints(self) -> list[str]:
        """The bound endpoints as resolved, then the connected ones. Opens the socket."""
        self._socket.socket  # noqa: B018 - binds, so the resolved ports are known
        return self._socket.bound + list(self.options.connect)

    def close(self, linger: int | None = None) -> None:
        """Close the socket; the next use opens a new one."""
        self._socket.close(linger)


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
