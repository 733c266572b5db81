"""``zevents.aio.EventService``: receives events in an asyncio task and fires them with
``fire_async``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import zmq
import zmq.asyncio

from zevents._signals import SignalHandler
from zevents.aio.eventsocket import AsyncEventSocket
from zevents.aio.receiving import ReceivingSocket, receiving_socket
from zevents.errors import DecodeError
from zevents.events import SERVICE_ERROR, SERVICE_IDLE, SERVICE_STOP
from zevents.eventsocket import Received
from zevents.service import Answer, Answers, ServiceBase, log_unsent

logger = logging.getLogger(__name__)

__all__ = ["EventService"]


@contextlib.contextmanager
def _loop_signal_handlers(
    loop: asyncio.AbstractEventLoop, handlers: dict[int, SignalHandler | int]
) -> Iterator[None]:
    """Run ``handlers`` (``(signum, frame)`` callables) on ``loop`` while the block runs,
    then put back what was installed before (asyncio.run's own SIGINT handler, say).
    Does nothing off the main thread, where no signal handler can be installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    try:
        for signum, handler in handlers.items():
            previous[signum] = signal.getsignal(signum)
            if callable(handler):
                loop.add_signal_handler(signum, handler, signum, None)
            else:
                signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            loop.remove_signal_handler(signum)
            if old is not None:
                signal.signal(signum, old)


class EventService(ServiceBase[ReceivingSocket]):
    """Receives events on ZeroMQ sockets in an asyncio task and fires each on ``bus``
    with ``fire_async`` (sync receivers run, ``async def`` ones are awaited, one event
    after the other), as ``zevents.EventService`` does with ``fire``.

    ``await service.run()`` returns once ``stop()`` is called (from a receiver, another
    task or thread, or a signal handler), ``zevents.service.stop`` is fired, or (on the
    main thread) SIGTERM or SIGINT arrives; SIGHUP is ignored. Events the sockets had
    already received are handled for up to ``drain_timeout`` seconds first. Cancelling
    the task that runs it closes the sockets at once and raises ``CancelledError``.

    Confirmed messages are confirmed after their receivers ran, the confirmations of a
    batch together; ``zevents.service.idle`` and ``zevents.service.error`` fire as in the
    sync service.

    The arguments (``bus``, ``poll_timeout``, ``drain_timeout``) and their errors are
    those of ``zevents.EventService``.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    #: The poll in progress; stop() ends it.
    _wait: asyncio.Future[Any] | None = None

    def _receiving(self, spec: Any) -> ReceivingSocket:
        return receiving_socket(spec)

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            in_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            in_loop = False
        if in_loop:
            self._end_wait()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._end_wait)

    def _end_wait(self) -> None:
        wait = self._wait
        if wait is not None and not wait.done():
            wait.set_result([])

    async def run(self) -> None:
        """Receive and fire events until stopped (see the class).

        Raises:
            EndpointError: A socket cannot bind or connect.
            ServiceError: The service has no listener, or is already running.
            asyncio.CancelledError: The task was cancelled (the sockets are closed).
        """
        self._begin()
        loop = self._loop = asyncio.get_running_loop()
        finished = False
        try:
            # Handlers first: a signal while the sockets open still stops gracefully.
            with _loop_signal_handlers(loop, self._signal_handlers()):
                await self._serve()
            finished = True
        finally:
            settle = self._end()
            self._loop = self._wait = None
            try:
                if finished and settle > 0:
                    await asyncio.sleep(settle)
            finally:
                self._close_listeners()

    async def _serve(self) -> None:
        sockets = [listener.socket for listener in self.listeners]
        poller = zmq.asyncio.Poller()
        for sock in sockets:
            poller.register(sock, zmq.POLLIN)
        self.bus.listen(SERVICE_STOP, self._stop_receiver)
        self._running.set()
        logger.info("service receiving on %s", ", ".join(map(repr, self.listeners)))
        timeout_ms = max(1, round(self.poll_timeout * 1000))
        idle_since = time.monotonic()
        while not self._stop_requested.is_set():
            self._wait = wait = asyncio.ensure_future(poller.poll(timeout_ms))
            ready = dict(await wait)
            if self._stop_requested.is_set():
                break
            if not ready:
                await self._fire_idle(time.monotonic() - idle_since)
                continue
            for sock in sockets:
                if sock in ready and await self.handle_ready(sock):
                    idle_since = time.monotonic()
        await self._drain_received(sockets)

    async def _drain_received(self, sockets: list[AsyncEventSocket]) -> None:
        """Handle what the sockets already hold, for up to ``drain_timeout`` seconds (a
        second ``stop()`` ends this early)."""
        deadline = self._start_drain()
        pending = True
        while self._is_draining(deadline, pending):
            pending = any([await self.handle_ready(sock) for sock in sockets])

    async def handle_ready(self, sock: AsyncEventSocket) -> int:
        """Handle up to a batch of messages ready on ``sock`` (without waiting for more);
        return how many. Confirmations are sent together (see ``Answers``)."""
        handled = 0
        answers = Answers()
        untokened = sock.zeroevents  # zeroevents' form confirms tokenless messages too
        for received in self._ready(sock):
            handled += 1
            error = await self._fire(received)
            if (received.token is not None or untokened) and answers.add(received, error):
                await self._confirm(sock, answers.take())
        if answers.pending:
            await self._confirm(sock, answers.take())
        if handled:
            # Sync receivers alone never give the loop back: other tasks get a turn.
            await asyncio.sleep(0)
        return handled

    async def _fire(self, received: Received | DecodeError) -> Exception | None:
        """Fire one message; the error its handling met, if any (reported)."""
        if isinstance(received, DecodeError):
            await self._report(received.event, received, received.frames)
            return received
        try:
            await self.bus.fire_async(received.event, received.payload)
        except Exception as exc:
            await self._report(received.event, exc, None)
            return exc
        return None

    async def _confirm(self, sock: AsyncEventSocket, answers: list[Answer]) -> None:
        for frames, event, count in sock.confirmations_of(answers):
            try:
                await sock.send_soon(frames)
                self._last_confirm = time.monotonic()
            except zmq.ZMQError as exc:
                log_unsent(event, count, exc)

    async def _fire_idle(self, idle_for: float) -> None:
        try:
            await self.bus.fire_async(SERVICE_IDLE, {"idle_for": round(idle_for, 3)})
        except Exception as exc:
            await self._report(SERVICE_IDLE, exc, None)

    async def _report(
        self, event: str | None, error: Exception, frames: list[bytes] | None
    ) -> None:
        payload = self._error_report(event, error, frames)
        if payload is None:
            return
        try:
            await self.bus.fire_async(SERVICE_ERROR, payload)
        except Exception:
            logger.exception("a receiver of %s failed", SERVICE_ERROR)
