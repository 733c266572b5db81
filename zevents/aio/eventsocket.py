"""``AsyncEventSocket``: the event socket on ``zmq.asyncio``; its waits are coroutines.

Frames, tokens and reads that never wait come from ``EventSocketBase``, as for the sync
``EventSocket``. Every message goes out in one synchronous step (all its frames, or none,
with ``NOBLOCK``), so a task cancelled in a send never leaves half a message queued; a
cancelled wait for a confirmation leaves only a confirmation whose token nobody awaits,
which the next wait skips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import zmq
import zmq.asyncio

from zevents.confirmations import Deadline, new_token, raise_for_status
from zevents.errors import DecodeError
from zevents.eventsocket import EventSocketBase, Received

__all__ = ["AsyncEventSocket"]

_NOBLOCK = int(zmq.NOBLOCK)
_POLLIN = zmq.POLLIN
_POLLOUT = zmq.POLLOUT
# pyzmq's type stub gives Socket.poll no flags argument; the method takes them.
_poll = cast("Callable[[zmq.asyncio.Socket, int, int], Awaitable[int]]", zmq.asyncio.Socket.poll)
# Writable, yet this message did not fit (a ROUTER peer with a full pipe): try again
# after this many seconds rather than spin.
_RETRY = 0.001


class AsyncEventSocket(EventSocketBase, zmq.asyncio.Socket):
    """An asyncio socket that speaks events (``zevents.aio`` listeners and services use
    it). The attributes are those of ``EventSocketBase``; ``send_timeout`` and
    ``confirm_timeout`` bound the waits (libzmq's ``sndtimeo``/``rcvtimeo`` stay -1, so
    that pyzmq adds no timer of its own to each wait)."""

    zmq_timeouts = False

    async def push(self, event: str, payload: Any = None, *, address: bytes | None = None) -> None:
        """Send one event; with ``confirmed``, await its confirmation.

        Raises:
            EncodeError: The payload cannot be encoded (nothing was sent).
            zmq.Again: No room to send within ``send_timeout`` (nothing was sent).
            DeliveryTimeout: Confirmed: no confirmation within ``confirm_timeout``.
            RemoteError: Confirmed: the receiver's receivers raised.
        """
        if not self.confirmed:
            await self.send_message(event, payload, address, None)
            return
        if self.zeroevents:
            await self.send_message(event, payload, address, None)
            await self.await_zeroevents_confirmation(event)
            return
        token = new_token()
        await self.send_message(event, payload, address, token)
        await self.await_confirmation(token, event)

    async def send_message(
        self, event: str, payload: Any, address: bytes | None, token: bytes | None
    ) -> None:
        """Put one event on the socket (see ``send_event``) as soon as there is room.

        Raises:
            EncodeError: The payload cannot be encoded (nothing was sent).
            zmq.Again: No room within ``send_timeout`` (nothing was sent).
        """
        try:
            self.send_event(event, payload, _NOBLOCK, address, token)
        except zmq.Again:
            await self._send_soon(lambda: self.send_event(event, payload, _NOBLOCK, address, token))

    async def push_token(self, event: str, payload: Any = None) -> bytes:
        """Send one event with a fresh token; return the token without awaiting the
        confirmation (``read_confirmations`` collects it)."""
        token = new_token()
        await self.send_message(event, payload, None, token)
        return token

    async def confirm(
        self, received: Received | DecodeError, error: BaseException | str | None = None
    ) -> None:
        """Confirm a message that carried a token (see ``EventSocket.confirm``).

        Raises:
            zmq.ZMQError: The confirmation could not be sent (``zmq.Again``: no room
                within ``send_timeout``).
        """
        frames = self.confirmation_of(received, error)
        if frames is not None:
            await self.send_soon(frames)

    async def send_soon(self, frames: list[bytes]) -> None:
        """Send ``frames`` as one message, once the socket has room.

        Raises:
            zmq.Again: No room within ``send_timeout``.
        """
        try:
            self.send_frames(frames, _NOBLOCK)
        except zmq.Again:
            await self._send_soon(lambda: self.send_frames(frames, _NOBLOCK))

    async def _send_soon(self, send: Callable[[], None]) -> None:
        """Call ``send`` (a send with ``NOBLOCK``) once the socket has room.

        Raises:
            zmq.Again: No room within ``send_timeout``.
        """
        deadline = Deadline(self.send_timeout)
        while True:
            left = deadline.left_ms()
            if left == 0 or not await _poll(self, left, _POLLOUT):
                raise zmq.Again()
            try:
                send()
                return
            except zmq.Again:
                await asyncio.sleep(_RETRY)

    async def readable(self, wait_ms: int) -> bool:
        """Whether a message is here, waiting up to ``wait_ms`` (-1: forever)."""
        if wait_ms == 0:
            return bool(cast(int, self.get(zmq.EVENTS)) & _POLLIN)
        return bool(await _poll(self, wait_ms, _POLLIN))

    async def read_confirmations(self, wait_ms: int) -> list[tuple[bytes, bytes]]:
        """Await a message for up to ``wait_ms`` (-1: forever), then take every message
        already here; the ``(tokens, status)`` of the confirmations among them (see
        ``take_confirmations``)."""
        if not await self.readable(wait_ms):
            return []
        return self.take_confirmations()

    async def await_confirmation(self, token: bytes, event: str = "") -> None:
        """Await the confirmation of the message that carried ``token`` (confirmations
        of other tokens are skipped).

        Raises:
            DeliveryTimeout: None came within ``confirm_timeout``.
            RemoteError: The receiver reported that its receivers raised.
        """
        deadline = self.confirm_deadline()
        while (left := deadline.left_ms()) != 0 and await self.readable(left):
            status = self.take_confirmation(token)
            if status is not None:
                raise_for_status(status, event)
                return
        raise deadline.missed(event, self.zeroevents)

    async def await_zeroevents_confirmation(self, event: str) -> None:
        """Await a ``zeroevents.confirmed`` naming ``event``.

        Raises:
            DeliveryTimeout: None came within ``confirm_timeout``.
        """
        deadline = self.confirm_deadline()
        while (left := deadline.left_ms()) != 0 and await self.readable(left):
            if self.take_zeroevents_confirmation(event):
                return
        raise deadline.missed(event, self.zeroevents)
