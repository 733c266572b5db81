"""``zevents.aio.EventListener``: sends events from asyncio code; as a bus receiver of
``fire_async``, forwards them."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import zmq
import zmq.asyncio

from zevents.aio.eventsocket import AsyncEventSocket
from zevents.config import ZEROEVENTS
from zevents.confirmations import ConfirmWindow, Deadline, InFlight, wait_ms
from zevents.errors import DeliveryError
from zevents.events import PUSH_ERROR
from zevents.listener import ListenerBase

logger = logging.getLogger(__name__)

__all__ = ["EventListener"]


class EventListener(ListenerBase[AsyncEventSocket]):
    """Sends events to a ZeroMQ socket from asyncio code, with the options, wire
    protocol and errors of ``zevents.EventListener``.

    ``await send(event, payload)`` raises when an event is not delivered; confirmed, it
    awaits the confirmation (or, with a ``window`` of N, only while N are unconfirmed).
    Registered on a bus, it is an ``async def`` receiver: ``await bus.fire_async(...)``
    forwards matching events, and a failure fires ``zevents.push.error`` instead of
    raising. Confirmed sends of one listener take turns (one lock); plain ones do not
    wait for each other.

    Cancelling a task inside ``send`` never leaves half a message queued (each message
    goes out in one step); a confirmation that comes after its send was cancelled is
    skipped by the next one, by token. In zeroevents' form (no token) the socket is
    dropped instead, so that the late answer cannot be taken for the next event.

    The arguments (``options``, ``bus``, ``**overrides``) and their errors are those of
    ``zevents.EventListener``.
    """

    socket_class = AsyncEventSocket

    def _init_sending(self) -> None:
        # A confirmed send reads the socket until its own answer: one at a time.
        self._lock = asyncio.Lock() if self.options.confirmed else None
        self._drop_on_cancel = self.options.confirmed == ZEROEVENTS

    async def wait_for_peers(self, timeout: float) -> int:
        """Open the socket and await (at most ``timeout`` seconds) a peer whose handshake
        is done on every ``connect`` endpoint; how many have one (see
        ``zevents.EventListener.wait_for_peers``).

        Raises:
            EndpointError: An endpoint cannot be bound or connected.
        """
        watch = self._socket.watch_peers()
        poller = zmq.asyncio.Poller()
        poller.register(watch.monitor, zmq.POLLIN)
        deadline = Deadline(round(timeout * 1000))
        try:
            while (wait := watch.next_wait(deadline)) and await poller.poll(wait):
                watch.record()
        finally:
            count = watch.close()
        return count

    async def __aenter__(self) -> EventListener:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self, linger: int | None = None) -> None:
        """Flush (a failure was reported with ``zevents.push.error`` and is logged
        here), then close the socket and the listener's own context (see
        ``zevents.EventListener.close``)."""
        if self._window is not None and len(self._window) and self._socket.is_open:
            try:
                await self.flush()
            except DeliveryError as exc:
                logger.warning("closing %r: %s", self, exc)
        self.close(linger)

    def close(self, linger: int | None = None) -> None:
        """Close the socket now, without flushing: events in flight stay unconfirmed
        (``aclose`` flushes first)."""
        if self.in_flight:
            logger.warning("closing %r with %d event(s) unconfirmed", self, self.in_flight)
        super().close(linger)

    async def send(self, event: str, payload: Any = None) -> None:
        """Send one event now; with ``confirmed``, return once the remote receivers ran
        (see ``zevents.EventListener.send``, whose errors it raises).

        Raises:
            DeliveryTimeout: No room to send within ``sndtimeo`` (``sent`` False), or,
                confirmed, no confirmation within ``rcvtimeo`` (``sent`` True).
            RemoteError: Confirmed: delivered, and a remote receiver raised.
            DeliveryError: Any other failure to send.
            EncodeError: The payload cannot be encoded (nothing was sent).
            EndpointError: The socket could not bind or connect on first use.
        """
        failed: list[InFlight] = []
        try:
            if self._lock is None:
                await self._socket.get().push(event, payload)
                return
            async with self._lock:
                if self._window is None:
                    await self._socket.get().push(event, payload)
                else:
                    failed = await self._push_windowed(self._window, event, payload)
        except BaseException as exc:
            raise self._failure(exc, event, half_sent=self._drop_on_cancel)  # noqa: B904
        await self._report_flights(failed)

    async def _push_windowed(
        self, window: ConfirmWindow, event: str, payload: Any
    ) -> list[InFlight]:
        """Send with a token once the window has room; the events found failed meanwhile."""
        sock = self._socket.get()
        failed = []
        if window.is_due():  # every quarter window, and whenever it is full
            failed = self._settled(window, await sock.read_confirmations(0))
            while window.is_full:
                wait = wait_ms(window.next_deadline())
                failed += self._settled(window, await sock.read_confirmations(wait))
        token = window.open(event, payload)
        try:
            await sock.send_message(event, payload, None, token)
        except BaseException:
            window.discard(token)
            raise
        return failed

    async def flush(self, timeout: float | None = None) -> None:
        """Await the confirmations of every event sent so far (windowed listeners;
        others return at once), as ``zevents.EventListener.flush``.

        Raises:
            DeliveryError: Some events sent since the last flush were not confirmed;
                ``error.unconfirmed`` lists them as ``(event, token)``.
        """
        window = self._window
        if window is None or self._lock is None:
            return
        stop = None if timeout is None else time.monotonic() + timeout
        failed: list[InFlight] = []
        async with self._lock:
            if len(window):
                sock = self._socket.get()
                while (wait := self._flush_wait(window, stop, timeout, failed)) is not None:
                    failed += self._settled(window, await sock.read_confirmations(wait))
            error = self._unconfirmed_error()
        await self._report_flights(failed)
        if error is not None:
            raise error

    async def _report_flights(self, flights: list[InFlight]) -> None:
        for flight in flights:
            if flight.error is not None:
                await self._report(flight.event, flight.payload, flight.error)

    async def __call__(self, event: str, payload: Any = None) -> bool:
        """Forward one event (``fire_async`` awaits this); a failure fires
        ``zevents.push.error``.

        Returns:
            Whether it was sent (as ``zevents.EventListener.__call__``).
        """
        if event == PUSH_ERROR:
            return False
        try:
            await self.send(event, payload)
        except Exception as exc:
            await self._report(event, payload, exc)
            return False
        return True

    async def _report(self, event: str, payload: Any, error: Exception) -> None:
        bus, report = self._push_error(event, payload, error)
        try:
            await bus.fire_async(PUSH_ERROR, report)
        except Exception:
            # The firing code must never see a listener's failure, not even this one.
            logger.exception("a receiver of %s raised", PUSH_ERROR)
