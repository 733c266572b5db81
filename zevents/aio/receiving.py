"""``zevents.aio.ReceivingSocket``: the socket an asyncio ``EventService`` receives on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zevents.aio.eventsocket import AsyncEventSocket
from zevents.listener import ListenerBase
from zevents.receiving import ReceivingSocketBase, options_for_receiving

__all__ = ["ReceivingSocket", "receiving_socket"]


class ReceivingSocket(ReceivingSocketBase[AsyncEventSocket]):
    """The receiving side of an asyncio service: one ``AsyncEventSocket`` made from
    ``ListenerOptions``, as ``zevents.ReceivingSocket`` makes a sync one.

    Args:
        options: The validated options.
    """

    socket_class = AsyncEventSocket


def receiving_socket(
    spec: ReceivingSocketBase[Any] | ListenerBase[Any] | Mapping[str, Any] | str,
) -> ReceivingSocket:
    """The asyncio receiving socket for ``spec``: an asyncio ``ReceivingSocket`` (as
    is), a sync one or a listener (sync or asyncio; their options), a mapping of
    options, or a config connection name.

    Raises:
        ConfigError: Invalid options or an unknown connection.
    """
    if isinstance(spec, ReceivingSocket):
        return spec
    if isinstance(spec, ReceivingSocketBase):
        return ReceivingSocket(spec.options)
    return ReceivingSocket(options_for_receiving(spec))
