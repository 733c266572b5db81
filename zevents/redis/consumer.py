"""``Consumer``: the consumer side of one queue (take, ack, retry, fail, touch, release)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

import orjson

from zevents.config import check_seconds
from zevents.errors import DecodeError, QueueError
from zevents.redis.keys import unique_name
from zevents.redis.message import BodyCodec, Message, Reclaimed, Taken
from zevents.redis.protocol import Driver, Fields, Plan, Reader
from zevents.redis.protocol.base import Finished
from zevents.redis.protocol.together import together
from zevents.redis.retry import select_priorities

if TYPE_CHECKING:
    from zevents.redis._client import Begun

T = TypeVar("T")


class PlanRunner(Protocol):
    """Runs a plan to its result (the sync ``Runner``; an asyncio one awaits instead)."""

    def run(self, plan: Plan[T], action: str) -> T:
        """Run ``plan``; ``action`` names it in error messages."""
        ...

    def begin(self, plan: Plan[T], action: str) -> Begun[T]:
        """Send ``plan``'s first round trip now, to be finished later."""
        ...


__all__ = ["Consumer"]


def _nothing_acked(take: Plan[list[Taken]]) -> Plan[tuple[list[str], list[Taken]]]:
    return [], (yield from take)


class Consumer:
    """Takes messages from one queue under leases and settles them; made by
    ``RedisQueue.consumer()``.

    Every method runs one Redis round trip and raises ``QueueUnavailable`` (Redis cannot
    be reached) or ``QueueError`` (Redis refused): redis-py's errors never get out.
    Settling is fenced: a consumer whose lease was lost (another took the message over)
    changes nothing, and the methods say so in their result.

    A ``Consumer`` is also the ``Lease`` of the messages it decoded: ``message.touch()``
    and ``message.set_status()`` come here.

    Args:
        queue: The queue's name.
        driver: The queue's driver (its protocol).
        runner: Runs the driver's plans (the queue's ``Runner``).
        codec: Decodes stored bodies.
        priorities: The queue's priority levels.
        lease: Seconds a taken message stays leased without a renewal (0 leases
            nothing: ``reclaim`` then takes over every expired or pending message at
            once, for rescue tools).
        serve: The priority levels to take from (a list or a range string).
        name: The consumer name (the stream driver's owner of pending entries);
            default a new unique one.
        keep_finished: Seconds to keep a record of each finished message (``ack``
            stores the records it is given); None keeps none.

    Raises:
        ConfigError: A bad lease or priority selection.
    """

    def __init__(
        self,
        queue: str,
        driver: Driver,
        runner: PlanRunner,
        codec: BodyCodec,
        *,
        priorities: Sequence[int],
        lease: float,
        serve: str | Iterable[int] | None = None,
        name: str | None = None,
        keep_finished: float | None = None,
    ) -> None:
        self.queue = queue
        self.keep_finished = keep_finished
        self.lease = check_seconds(lease, "lease", minimum=0.0, option="keep_alive")
        self.lease_ms = int(self.lease * 1000)
        spec = serve if serve is None or isinstance(serve, str) else list(serve)
        self.levels = select_priorities(priorities, spec)
        self.name = name or unique_name()
        self.reader = Reader(self.name, self.lease_ms, tuple(self.levels))
        self._driver = driver
        self._run, self._begin = runner.run, runner.begin
        self._codec = codec
        self._take = f"take from {queue!r}"
        self._settle = f"settle in {queue!r}"
        self._finished_key = driver.keys.key("finished")
        self._resume: dict[int, str] = {}  # where the next reclaim goes on (streams)

    def __repr__(self) -> str:
        return f"<Consumer {self.name} of {self.queue!r} levels={self.levels}>"

    # --- taking -----------------------------------------------------------------------

    def take(self, count: int) -> list[Taken]:
        """Lease up to ``count`` due messages (at most 3,000 a call on the list,
        sorted-set and set drivers), highest priority first."""
        return self._run(self._driver.take(self.reader, count), self._take)

    def reclaim(self, max_attempts: int) -> Reclaimed:
        """Recover messages whose lease expired (their worker died or hung), as many as
        one call may (500 on the list, sorted-set and set drivers, 100 per priority on
        streams); ``more`` on the result says the limit was reached, or (streams) that
        the scan of a pending list stopped part way: call again, and it goes on from
        there.

        Past ``max_attempts`` (or the queue's ``max_reclaims`` claims on streams) they go
        to the failed store. On the stream driver the reclaimed entries are leased to
        this consumer and returned; the other drivers put them back in line for the next
        ``take`` and return none.
        """
        plan = self._driver.reclaim(self.reader, max_attempts, self._resume)
        reclaimed = self._run(plan, f"reclaim in {self.queue!r}")
        self._resume = reclaimed.resume
        return reclaimed

    def decode(self, taken: Taken) -> Message:
        """The message of a taken body (its lease is this consumer).

        Raises:
            DecodeError: The body is not a valid message.
        """
        return Message.from_fields(taken, self._codec.decode(taken.body), self.queue, self)

    # --- settling ---------------------------------------------------------------------

    def _fields(self, item: Message | Taken) -> tuple[Taken, Fields]:
        """The taken message with its identifier and serial group (the settling scripts
        release them); a bare ``Taken`` is decoded for them."""
        if isinstance(item, Message):
            return (item.taken, (item.identifier or "", item.serial_group or ""))
        try:
            fields = self._codec.decode(item.body)
        except DecodeError:
            return (item, ("", ""))
        ident, serial = fields.get("identifier"), fields.get("serial_group")
        return (
            item,
            (ident if isinstance(ident, str) else "", serial if isinstance(serial, str) else ""),
        )

    def ack(
        self, items: Sequence[Message | Taken], records: Sequence[bytes] | None = None
    ) -> list[str]:
        """Finish messages; returns the ids whose lease was lost (left alone).

        ``records`` (one per item, see ``encode_finished``) are stored in the same call
        when the consumer keeps finished records, and ignored otherwise.
        """
        if not items:
            return []
        return self._run(self._ack(items, records), self._settle)

    def ack_and_take(
        self,
        items: Sequence[Message | Taken],
        records: Sequence[bytes] | None,
        count: int,
    ) -> tuple[list[str], list[Taken]]:
        """``ack(items, records)`` and ``take(count)`` in one round trip: the ids whose
        lease was lost, and the messages taken."""
        return self.begin_ack_and_take(items, records, count).finish()

    def begin_ack_and_take(
        self,
        items: Sequence[Message | Taken],
        records: Sequence[bytes] | None,
        count: int,
    ) -> Begun[tuple[list[str], list[Taken]]]:
        """``ack_and_take`` sent now, its replies read by ``finish()`` on the result:
        Redis works on it meanwhile. Until then the messages it took are leased to this
        consumer but not renewed by anyone.

        Raises:
            QueueUnavailable: Redis cannot be reached.
        """
        take = self._driver.take(self.reader, count)
        both = together(self._ack(items, records), take) if items else _nothing_acked(take)
        return self._begin(both, self._take)

    def _ack(
        self, items: Sequence[Message | Taken], records: Sequence[bytes] | None
    ) -> Plan[list[str]]:
        finished = Finished.kept(self._finished_key, self.keep_finished, records)
        return self._driver.ack(self.reader, [self._fields(item) for item in items], finished)

    def retry(self, item: Message | Taken, delay: float, *, count_attempt: bool = True) -> bool:
        """Put a message back, due after ``delay`` seconds; False if its lease was lost.

        ``count_attempt=False`` (a ``WaitingError``) does not count the attempt.
        """
        taken = item.taken if isinstance(item, Message) else item
        plan = self._driver.retry(self.reader, taken, int(delay * 1000), count_attempt)
        return self._run(plan, self._settle)

    def fail(self, item: Message | Taken, record: bytes) -> bool:
        """Move a message to the failed store with ``record`` (see ``failure_record``);
        False if its lease was lost."""
        taken, fields = self._fields(item)
        return self._run(self._driver.fail(self.reader, taken, record, fields), self._settle)

    def touch(self, items: Sequence[Taken]) -> list[str]:
        """Renew the leases of ``items`` from now; returns the ids whose lease was lost."""
        if not items:
            return []
        return self._run(self._driver.touch(self.reader, items), self._settle)

    def release(self, items: Sequence[Taken]) -> int:
        """Give back messages taken but never started (their attempt is not counted)."""
        if not items:
            return 0
        return self._run(self._driver.release(self.reader, items), self._settle)

    def leave(self) -> None:
        """This consumer stops: drop per-consumer state it no longer needs (streams)."""
        self._run(self._driver.leave(self.reader), self._settle)

    # --- the Lease of its messages ----------------------------------------------------

    def renew(self, message: Message) -> None:
        """Extend ``message``'s lease (``Message.touch``).

        Raises:
            QueueError: The lease was lost (another worker took the message over).
        """
        if self.touch([message.taken]):
            raise QueueError(f"message {message.id} is no longer leased to this worker")

    def record_status(self, message: Message) -> None:
        """Store ``message``'s status and percent (``Message.set_status``)."""
        value = orjson.dumps({"status": message.status, "percent": message.percent})
        self._run(self._driver.set_status(message.id, value), f"status of {message.id!r}")
