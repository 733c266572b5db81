"""``Consumer`` on asyncio: take, ack, retry, fail, touch and release, awaited."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

import orjson

from zevents.config import check_seconds
from zevents.errors import DecodeError, QueueError
from zevents.redis.keys import unique_name
from zevents.redis.message import BodyCodec, Message, Reclaimed, Taken
from zevents.redis.protocol import Driver, Fields, Plan, Reader
from zevents.redis.protocol.base import Finished
from zevents.redis.protocol.together import together
from zevents.redis.retry import select_priorities

logger = logging.getLogger(__name__)

__all__ = ["Consumer", "reader_for", "settle_fields"]

T = TypeVar("T")


class AsyncPlanRunner(Protocol):
    """Runs a plan to its result on an asyncio client (``AsyncRunner``)."""

    async def run(self, plan: Plan[T], action: str) -> T:
        """Run ``plan``; ``action`` names it in error messages."""
        ...


def reader_for(
    priorities: Sequence[int], lease: float, serve: str | Iterable[int] | None, name: str | None
) -> Reader:
    """The ``Reader`` a consumer acts as, its options checked as the sync consumer checks
    them: ``lease`` seconds (0 leases nothing), the ``serve`` levels (a list or a range
    string; default all), the consumer ``name`` (default a new unique one).

    Raises:
        ConfigError: A bad lease or priority selection.
    """
    lease_ms = int(check_seconds(lease, "lease", minimum=0.0, option="keep_alive") * 1000)
    levels = select_priorities(
        priorities, serve if serve is None or isinstance(serve, str) else list(serve)
    )
    return Reader(name or unique_name(), lease_ms, tuple(levels))


def settle_fields(codec: BodyCodec, item: Message | Taken) -> tuple[Taken, Fields]:
    """The taken message with the identifier and serial group the settling scripts
    release; a bare ``Taken`` is decoded for them (an undecodable one has neither)."""
    if isinstance(item, Message):
        return (item.taken, (item.identifier or "", item.serial_group or ""))
    try:
        fields = codec.decode(item.body)
    except DecodeError:
        return (item, ("", ""))
    found = (fields.get("identifier"), fields.get("serial_group"))
    ident, serial = (value if isinstance(value, str) else "" for value in found)
    return (item, (ident, serial))


class Consumer:
    """Takes messages from one queue under leases and settles them, on asyncio; made by
    ``await queue.consumer()``.

    The methods are those of ``zevents.redis.Consumer``, awaited, with the same fencing
    and the same errors (``QueueUnavailable``, ``QueueError``; redis-py's never get out).

    It is also the ``Lease`` of the messages it decoded. ``message.touch()`` and
    ``message.set_status()`` are plain calls a receiver makes without awaiting, so here
    they start the write and return: a renewal whose lease was lost is logged (the
    worker's heartbeat renews every lease it holds anyway), and of several statuses set
    quickly the last one is stored. ``await consumer.renew_now(message)`` renews and
    raises ``QueueError`` when the lease was lost.

    Args:
        queue: The name of the queue it reads.
        driver: That queue's protocol.
        runner: What awaits the driver's plans.
        codec: Reads stored bodies.
        reader: Who takes, for how long, from which levels (see ``reader_for``).
        keep_finished: Seconds to keep a record of each finished message (``ack`` with
            records; see ``zevents.redis.Consumer``); None keeps none.
    """

    def __init__(
        self,
        queue: str,
        driver: Driver,
        runner: AsyncPlanRunner,
        codec: BodyCodec,
        reader: Reader,
        keep_finished: float | None = None,
    ) -> None:
        self.queue, self.reader, self.name = queue, reader, reader.name
        self.keep_finished = keep_finished
        self._finished_key = driver.keys.key("finished")
        self.levels = list(reader.levels)
        self.lease_ms = reader.lease_ms
        self.lease = reader.lease_ms / 1000
        self._driver, self._run, self._codec = driver, runner.run, codec
        self._take, self._settle = f"take from {queue!r}", f"settle in {queue!r}"
        self._resume: dict[int, str] = {}  # where the next reclaim goes on (streams)
        # Writes started by message.touch() and set_status(), held until done.
        self._writes: set[asyncio.Task[Any]] = set()
        self._statuses: dict[str, Message] = {}
        self._writing: set[str] = set()

    def __repr__(self) -> str:
        return f"<aio Consumer {self.name} of {self.queue!r} levels={self.levels}>"

    async def take(self, count: int) -> list[Taken]:
        """Lease up to ``count`` due messages (at most 3,000 a call on the list,
        sorted-set and set drivers), highest priority first."""
        return await self._run(self._driver.take(self.reader, count), self._take)

    async def ack_and_take(
        self, items: Sequence[Message | Taken], count: int, records: Sequence[bytes] | None = None
    ) -> tuple[list[str], list[Taken]]:
        """``ack(items, records)`` and ``take(count)`` in one round trip: the ids whose
        lease was lost, and the messages taken."""
        both = together(self._ack(items, records), self._driver.take(self.reader, count))
        return await self._run(both, self._take)

    def _ack(
        self, items: Sequence[Message | Taken], records: Sequence[bytes] | None
    ) -> Plan[list[str]]:
        """The plan acknowledging ``items``, writing their finished ``records`` (one per
        item, in order) when this consumer keeps them."""
        finished = Finished.kept(self._finished_key, self.keep_finished, records)
        done = [settle_fields(self._codec, item) for item in items]
        return self._driver.ack(self.reader, done, finished)

    @property
    def reclaims_to_itself(self) -> bool:
        """Whether ``reclaim`` leases what it recovers to this consumer (streams) rather
        than putting it back in line."""
        return self._driver.reclaims_to_reader

    async def reclaim(self, max_attempts: int) -> Reclaimed:
        """Recover messages whose lease expired (see ``zevents.redis.Consumer.reclaim``)."""
        plan = self._driver.reclaim(self.reader, max_attempts, self._resume)
        reclaimed = await self._run(plan, f"reclaim in {self.queue!r}")
        self._resume = reclaimed.resume
        return reclaimed

    def decode(self, taken: Taken) -> Message:
        """The message of a taken body (its lease is this consumer).

        Raises:
            DecodeError: The body is not a valid message.
        """
        return Message.from_fields(taken, self._codec.decode(taken.body), self.queue, self)

    async def ack(
        self, items: Sequence[Message | Taken], records: Sequence[bytes] | None = None
    ) -> list[str]:
        """Finish messages (with their finished ``records``, one per item, when this
        consumer keeps them); returns the ids whose lease was lost (left alone)."""
        if not items:
            return []
        return await self._run(self._ack(items, records), self._settle)

    async def retry(
        self, item: Message | Taken, delay: float, *, count_attempt: bool = True
    ) -> bool:
        """Put a message back, due after ``delay`` seconds; False if its lease was lost."""
        taken = item.taken if isinstance(item, Message) else item
        plan = self._driver.retry(self.reader, taken, int(delay * 1000), count_attempt)
        return await self._run(plan, self._settle)

    async def fail(self, item: Message | Taken, record: bytes) -> bool:
        """Move a message to the failed store with ``record``; False if its lease was
        lost."""
        taken, fields = settle_fields(self._codec, item)
        return await self._run(self._driver.fail(self.reader, taken, record, fields), self._settle)

    async def touch(self, items: Sequence[Taken]) -> list[str]:
        """Renew the leases of ``items`` from now; returns the ids whose lease was lost."""
        if not items:
            return []
        return await self._run(self._driver.touch(self.reader, items), self._settle)

    async def release(self, items: Sequence[Taken]) -> int:
        """Give back messages taken but never started (their attempt is not counted)."""
        if not items:
            return 0
        return await self._run(self._driver.release(self.reader, items), self._settle)

    async def leave(self) -> None:
        """This consumer stops: drop per-consumer state it no longer needs (streams)."""
        await self._run(self._driver.leave(self.reader), self._settle)

    # --- the Lease of its messages ----------------------------------------------------

    async def renew_now(self, message: Message) -> None:
        """Extend ``message``'s lease, awaited.

        Raises:
            QueueError: The lease was lost (another worker took the message over).
        """
        if await self.touch([message.taken]):
            raise QueueError(f"message {message.id} is no longer leased to this worker")

    def renew(self, message: Message) -> None:
        """``Message.touch``: start a renewal of ``message``'s lease."""
        self._start(self._renew_logged(message))

    def record_status(self, message: Message) -> None:
        """``Message.set_status``: store its status soon (the latest one wins)."""
        self._statuses[message.id] = message
        if message.id not in self._writing:
            self._writing.add(message.id)
            self._start(self._write_statuses(message.id))

    async def _renew_logged(self, message: Message) -> None:
        try:
            await self.renew_now(message)
        except QueueError as exc:
            logger.warning("touch of %s: %s", message.id, exc)

    async def _write_statuses(self, message_id: str) -> None:
        """Store the latest status of a message until none is waiting: one write at a
        time, so an older status never lands after a newer one."""
        try:
            while message_id in self._statuses:
                message = self._statuses.pop(message_id)
                value = orjson.dumps({"status": message.status, "percent": message.percent})
                plan = self._driver.set_status(message_id, value)
                try:
                    await self._run(plan, f"status of {message_id!r}")
                except QueueError as exc:
                    logger.warning("status of %s not stored: %s", message_id, exc)
        finally:
            self._writing.discard(message_id)

    def _start(self, write: Any) -> None:
        task = asyncio.get_running_loop().create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def settled(self) -> None:
        """Wait for the writes ``touch()`` and ``set_status()`` started."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
