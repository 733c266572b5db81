"""Automatic pipelining of sends (private): concurrent ``send`` calls share a round trip.

An asyncio producer keeps many sends in flight; each one alone would cost a round trip
and a script call. The batcher gathers every send made before the event loop next runs
its callbacks into one script call (the one ``send_many`` uses), so 32 tasks sending at
once cost one round trip, not 32. Each send still returns only once its message is
stored, with its own id; messages sent one after the other by one task keep their order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from zevents.redis.protocol import QUEUE_BATCH, SendItem

__all__ = ["SendBatcher"]

Pending = list[tuple[SendItem, "asyncio.Future[str]"]]


class SendBatcher:
    """Gathers the sends of one loop iteration and runs them as one batch.

    Args:
        send: Stores a batch (at most ``QUEUE_BATCH`` items) and returns their ids.
    """

    def __init__(self, send: Callable[[Sequence[SendItem]], Awaitable[list[str]]]) -> None:
        self._send = send
        self._pending: Pending = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, item: SendItem) -> asyncio.Future[str]:
        """Send ``item`` with whatever else is sent before the loop runs again; the
        future is its id (or the error of its batch)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush, loop)
        return future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), QUEUE_BATCH):
            task = loop.create_task(self._run(pending[start : start + QUEUE_BATCH]))
            self._tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: Pending) -> None:
        try:
            ids = await self._send([item for item, _ in batch])
        except Exception as exc:
            first = True
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc if first else _own(exc))
                    first = False
            return
        except BaseException:  # cancelled (the loop is closing): so are its sends
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), message_id in zip(batch, ids, strict=True):
            if not future.done():  # its sender was cancelled meanwhile
                future.set_result(message_id)

    async def drain(self) -> None:
        """Wait for the batches in flight (a queue closing)."""
        while self._tasks or self._pending:
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._pending and not self._tasks:
                await asyncio.sleep(0)


def _own(exc: Exception) -> Exception:
    """A copy of ``exc`` for one more sender of its batch: one exception object raised in
    several tasks would carry each task's frames into the next one's traceback. The copy
    keeps its type, message, attributes, cause and traceback (the shared one, if it
    cannot be made)."""
    kind = type(exc)
    try:  # not through __init__: ReplicationError's takes keywords the args lack
        twin = kind.__new__(kind, *exc.args)
        twin.args = exc.args  # OSError's __new__ leaves them to an __init__ of its own
        twin.__dict__.update(exc.__dict__)
    except Exception:  # an exception type that cannot be made so
        return exc
    twin.__cause__, twin.__context__ = exc.__cause__, exc.__context__
    twin.__suppress_context__ = exc.__suppress_context__
    return twin.with_traceback(exc.__traceback__)
