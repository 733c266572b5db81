"""``RedisQueue`` on asyncio: the sync queue's storage and options, awaited."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from zevents.aio.redis._batching import SendBatcher
from zevents.aio.redis._client import AsyncRunner, configured
from zevents.aio.redis._jobs import run_job
from zevents.aio.redis._options import QueueOptions, SendOptions, check_keywords
from zevents.aio.redis.consumer import Consumer, reader_for
from zevents.aio.redis.registry import WorkerRegistry
from zevents.errors import QueueError
from zevents.redis import defaults
from zevents.redis.archive import ArchiveStore, JsonLinesArchive
from zevents.redis.durations import until_ms
from zevents.redis.history import keep_finished_seconds, older_than_ms
from zevents.redis.jobs import Job
from zevents.redis.keys import QueueKeys, unique_name
from zevents.redis.message import BodyCodec, FailedMessage, select_failed
from zevents.redis.protocol import Driver, Plan, SendItem, make_driver
from zevents.redis.protocol import records as rec
from zevents.redis.protocol.finished import FinishedRecord, clear_finished, list_finished
from zevents.redis.protocol.sending import send_item, send_items
from zevents.redis.purge import PurgeResult, Removal, restoring
from zevents.redis.replay import HistoryEntry, Until, merge_payloads, reading_history
from zevents.redis.replication import Replication, replicated
from zevents.serializers import resolve_serializer

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger(__name__)

__all__ = ["RedisQueue"]

T = TypeVar("T")


class RedisQueue:
    """A durable queue of events in Redis, for asyncio code.

    The same queue as ``zevents.redis.RedisQueue``, with the same options, keys, Lua
    scripts and stored format: a sync producer and an async worker (or the reverse)
    share a queue. Every operation is a coroutine; sends made concurrently (tasks
    awaiting ``send`` at the same time) go to Redis together in one round trip.

    Construction does no I/O. The first operation (or ``open()``, or ``async with``)
    reads the queue's record; a ``group`` named here is created then (construction
    cannot await), so it gets every message still in the stream and every one sent
    later. The embedded Redis, when no URL is given, starts on first use, off the loop.

    A queue is also a bus receiver for ``Bus.fire_async``: ``bus.listen("orders.*",
    queue)`` enqueues every matching event.

    Args:
        name: The queue name.
        url: ``redis://`` URL; ``None``: ``connection``, else ``$ZEVENTS_REDIS_URL``,
            else the config file's ``[redis.default]``, else the embedded Redis.
        driver: ``"list"``, ``"sorted-set"``, ``"stream"`` or ``"set"``; ``None``: as
            recorded, else ``"list"``.
        priorities: The priority levels; ``None``: as recorded, else ``0`` alone.
        group: The stream consumer group this object reads as (default ``"default"``).
        consumer: The consumer name its consumers read as (stream driver).
        default_priority: The level of messages sent without one.
        prefix: Prefix of every key.
        max_reclaims: Stream driver: claims of a silent consumer's entry before it fails.
        socket_timeout: Seconds any single Redis call may take.
        client: An existing ``redis.asyncio`` client to use instead of ``url`` (not
            closed here).
        serializer: Writes and reads the stored body (default JSON).
        connection: The name of a ``[redis.NAME]`` table of the config file.
        create_group: Create a ``group`` named here when the queue opens (default
            True; False for a reader that only inspects).
        keep_finished: Keep a record of each message this object's workers finish, for
            this long (``"14d"``, or seconds; see ``finished()``); None keeps none.
        min_replicas: A send, ``send_many`` and ``retry_failed`` are confirmed only once
            this many replicas have them (Redis ``WAIT``), else they raise
            ``ReplicationError``; 0 (the default) takes the master's word.
        replica_timeout: Seconds a send waits for those replicas (less than
            ``socket_timeout``).

    Raises:
        ConfigError: Bad options (checked here, before any I/O).
    """

    def __init__(self, name: str, url: str | None = None, **options: Unpack[QueueOptions]) -> None:
        check_keywords(options, QueueOptions, "RedisQueue")
        self.prefix = options.get("prefix", defaults.DEFAULT_PREFIX)
        QueueKeys(name, (0,), prefix=self.prefix)  # checks the name
        driver, levels = options.get("driver"), options.get("priorities")
        self._asked = (driver, tuple(levels) if levels else None, options.get("default_priority"))
        # Bad levels or driver fail here, before any I/O.
        rec.settle_shape(name, None, *self._asked)
        self.name, self.codec = name, BodyCodec(resolve_serializer(options.get("serializer")))
        group = options.get("group")
        self.group = group or defaults.DEFAULT_GROUP
        self.consumer_name = options.get("consumer") or unique_name()
        self.max_reclaims = options.get("max_reclaims", defaults.DEFAULT_MAX_RECLAIMS)
        client = options.get("client")
        self._owns_client = client is None
        where: str | None = url or "redis://(client)"
        if client is None:
            where = configured(url, options.get("connection"))
        timeout = options.get("socket_timeout", defaults.DEFAULT_SOCKET_TIMEOUT)
        self.keep_finished = keep_finished_seconds(options.get("keep_finished"))
        #: The replicas a write waits for (``min_replicas``, ``replica_timeout``).
        self.replication = Replication(
            options.get("min_replicas", defaults.DEFAULT_MIN_REPLICAS),
            options.get("replica_timeout", defaults.DEFAULT_REPLICA_TIMEOUT),
        ).within(timeout)
        self.runner = AsyncRunner(client, where, socket_timeout=timeout, keep=self._owns_client)
        self._names_group = (
            group is not None
            and options.get("create_group", True)
            and (driver or "stream") == "stream"
        )
        #: What the queue was created as (None until opened, or if it is new).
        self.record: rec.QueueRecord | None = None
        self._driver: Driver | None = None
        self._prepared = False
        self._lock = asyncio.Lock()
        self._batcher = SendBatcher(self._send_batch)
        self._send_action = f"send to {name!r}"

    # --- what the queue is: read on first use -------------------------------------

    @property
    def url(self) -> str | None:
        """The Redis URL (None until the embedded Redis, if used, has started)."""
        return self.runner.url

    async def open(self) -> RedisQueue:
        """Read the queue's record and settle its driver and levels (every operation
        does this first); a ``group`` named at construction is created now.

        Raises:
            ConfigError: A driver or levels other than the queue's own.
            QueueUnavailable: Redis cannot be reached.
        """
        if self._driver is None:
            async with self._lock:
                if self._driver is None:
                    await self._read_shape()
            if self._names_group and self.shape.driver == "stream":
                await self._ready_to_write()
        return self

    async def _read_shape(self) -> None:
        plan = rec.read_record(self.name, self.prefix)
        found = await self.runner.run(plan, f"open {self.name!r}")
        self._shape = rec.settle_shape(self.name, found, *self._asked)
        self.record = found
        stream = self._shape.driver == "stream"
        self._keys = QueueKeys(self.name, self._shape.priorities, stream=stream, prefix=self.prefix)
        self._driver = make_driver(
            self._shape.driver,
            self._keys,
            self._shape.default_priority,
            self.codec,
            group=self.group,
            max_reclaims=self.max_reclaims,
        )

    async def _ready_to_write(self) -> Driver:
        """Before the first write: record the queue (if it is new) and let the driver
        prepare (the stream driver creates its consumer group); returns the driver."""
        driver = self._driver if self._driver is not None else (await self.open())._opened()
        if self._prepared:
            return driver
        async with self._lock:
            if not self._prepared:
                plan = rec.record(self._keys, self._shape.driver, self._shape.default_priority)
                found = await self.runner.run(plan, f"record {self.name!r}")
                rec.check_record(found, self._shape)
                self.record = found
                await self.runner.run(driver.prepare(), f"create group {self.group!r}")
                self._prepared = True
        return driver

    def _opened(self) -> Driver:
        if self._driver is None:
            raise QueueError(f"queue {self.name!r} is not open yet: await queue.open() first")
        return self._driver

    async def _read(self, plan: Plan[T], action: str) -> T:
        return await self.runner.run(plan, f"{action} of {self.name!r}")

    async def _write(self, plan: Plan[T], action: str, min_replicas: int | None = None) -> T:
        """Run a plan that writes messages (the queue prepared), confirmed by
        ``min_replicas`` replicas (None: the queue's ``replication``)."""
        wanted = self.replication.asked(min_replicas, self.runner.socket_timeout)
        waited = replicated(plan, wanted, self._keys.key("replicated"), action)
        return await self.runner.run(waited, action)

    def __repr__(self) -> str:
        driver = self._shape.driver if self._driver else (self._asked[0] or "as recorded")
        return f"<aio RedisQueue {self.name!r} driver={driver}>"

    @property
    def shape(self) -> rec.QueueShape:
        """Its ``driver`` name, priority levels (``priorities``, highest first) and
        ``default_priority`` (once opened)."""
        self._opened()
        return self._shape

    @property
    def keys(self) -> QueueKeys:
        """The queue's keys (once opened)."""
        self._opened()
        return self._keys

    @property
    def driver(self) -> Driver:
        """The sans-I/O driver (once opened)."""
        return self._opened()

    # --- sending ------------------------------------------------------------------

    async def send(self, event: str, payload: Any = None, **options: Unpack[SendOptions]) -> str:
        """Enqueue one event; returns the message id once it is stored.

        The options are those of ``zevents.redis.RedisQueue.send``: ``delay`` (seconds),
        ``execute_at`` (a datetime; naive is UTC), ``priority``, ``identifier``,
        ``serial_group``, ``unique`` and ``min_replicas`` (replicas to wait for instead
        of the queue's; such a send makes its own round trip).

        Raises:
            ConfigError: A bad option, ``EncodeError`` a payload the serializer cannot
                write, ``QueueUnavailable`` or ``QueueError`` a Redis failure.
            ReplicationError: Fewer than ``min_replicas`` replicas acknowledged it (with
                every send of its round trip: it is on the master, not confirmed).
        """
        if not self._prepared:
            await self._ready_to_write()
        replicas = options.pop("min_replicas", None)  # a fresh dict, the caller's keywords
        item = send_item(self._shape, self.codec, event, payload, options)
        if replicas is None:
            return await self._batcher.add(item)
        sent = await self._write(self._opened().send([item]), self._send_action, replicas)
        return sent[0]

    async def __call__(self, event: str, payload: Any = None) -> str:
        """Enqueue ``event`` (a queue is a receiver of ``Bus.fire_async``)."""
        return await self.send(event, payload)

    async def _send_batch(self, items: Sequence[SendItem]) -> list[str]:
        return await self._write(self._opened().send(items), self._send_action)

    async def send_many(
        self,
        events: Iterable[tuple[str, Any] | Mapping[str, Any]],
        *,
        min_replicas: int | None = None,
    ) -> list[str]:
        """Enqueue ``events`` (pairs of event and payload, or mappings of ``event``,
        ``payload`` and ``send``'s keywords) in one round trip, as scripts of 1,000 in
        one pipeline; their ids, in order. ``min_replicas`` as for ``send``."""
        driver = await self._ready_to_write()
        items = send_items(self._shape, self.codec, events)
        if not items:
            return []
        return await self._write(driver.send_many(items), self._send_action, min_replicas)

    async def check_send(self, **options: Any) -> None:
        """Check keywords of ``send`` now, before any message is at stake; raises
        ``ConfigError`` (``option`` names the keyword)."""
        await self.open()
        send_item(self._shape, self.codec, "check", None, options)

    # --- consuming ------------------------------------------------------------------

    async def consumer(
        self,
        *,
        lease: float = defaults.DEFAULT_KEEP_ALIVE,
        serve: str | Iterable[int] | None = None,
        name: str | None = None,
    ) -> Consumer:
        """The consumer side of this queue (see ``zevents.redis.RedisQueue.consumer``).

        Raises:
            ConfigError: A bad lease or priority selection.
        """
        driver = await self._ready_to_write()
        reader = reader_for(self._shape.priorities, lease, serve, name or self.consumer_name)
        keep = self.keep_finished
        return Consumer(self.name, driver, self.runner, self.codec, reader, keep_finished=keep)

    def registry(self) -> WorkerRegistry:
        """The worker registry of this queue's server and key prefix (its connection)."""
        return WorkerRegistry.on(self.runner, self.prefix)

    # --- inspection ---------------------------------------------------------------

    async def exists(self) -> bool:
        """Whether the queue was ever used (a record, or keys holding messages)."""
        await self.open()
        return self.record is not None or await self._read(rec.has_data(self._keys), "data")

    async def stats(self) -> dict[str, Any]:
        """Counts, as ``zevents.redis.RedisQueue.stats`` gives them.

        Raises:
            QueueNotFound: No queue of this name was ever used.
        """
        if not await self.exists():
            raise await self.runner.run(rec.not_found(self.name, self.prefix), "list queues")
        return await self._read(self._opened().stats(), "stats")

    async def unfinished(self, identifiers: Iterable[str]) -> set[str]:
        """The identifiers that still have a message queued, delayed or processing."""
        wanted = list(identifiers)
        await self.open()
        return await self._read(self._opened().unfinished(wanted), "unfinished")

    async def failed(self) -> list[FailedMessage]:
        """The failed store, oldest failure first."""
        await self.open()
        return await self._read(self._opened().failed(), "failed")

    async def retry_failed(
        self,
        ids: Iterable[str] | None = None,
        *,
        event: str | None = None,
        receiver: str | None = None,
    ) -> int:
        """Put failed messages back to be tried afresh; returns how many (the selectors
        as in ``zevents.redis.RedisQueue.retry_failed``)."""
        chosen = select_failed(await self.failed(), ids=ids, event=event, receiver=receiver)
        if not chosen:  # nothing to write, nor to wait for replicas of
            return 0
        driver = await self._ready_to_write()
        return await self._write(driver.retry_failed(chosen), f"retry failed of {self.name!r}")

    async def finished(self, limit: int | None = None) -> list[FinishedRecord]:
        """The records of finished messages (``keep_finished``), newest last; the
        ``limit`` newest when given."""
        await self.open()
        return await self._read(list_finished(self._keys.key("finished"), limit), "finished")

    async def clear_finished(self, older_than: str | float | None = None) -> int:
        """Delete the finished records (those older than ``older_than``, a duration,
        when given); returns how many."""
        older = older_than_ms(older_than)  # a bad duration fails before any I/O
        await self.open()
        return await self._read(clear_finished(self._keys.key("finished"), older), "clear finished")

    # --- history ------------------------------------------------------------------

    async def purge(self, older_than: str | float, *, force: bool = False) -> PurgeResult:
        """Delete old messages, as ``zevents.redis.RedisQueue.purge`` does: those sent
        more than ``older_than`` ago (a duration or seconds) that every consumer group
        has acknowledged; with ``force``, unacknowledged ones too.

        Raises:
            ConfigError: ``older_than`` is not a duration (before any I/O).
            QueueNotFound: No queue of this name was ever used.
        """
        return await self._remove(Removal(older_than, force, None))

    async def archive(
        self, older_than: str | float, *, force: bool = False, store: ArchiveStore | None = None
    ) -> PurgeResult:
        """Move the messages ``purge`` would delete into ``store`` (default: the
        ``JsonLinesArchive`` the sync queue uses), written and fsynced in a thread before
        they are deleted from Redis (see ``zevents.redis.RedisQueue.archive``).

        Raises:
            ConfigError: ``older_than`` is not a duration (before any I/O).
            QueueNotFound: No queue of this name was ever used.
            QueueError: The store could not be written (nothing was deleted).
        """
        return await self._remove(Removal(older_than, force, store or JsonLinesArchive()))

    async def restore(
        self, ids: Iterable[str] | None = None, *, store: ArchiveStore | None = None
    ) -> dict[str, str]:
        """Put archived messages back as new messages, due now (``ids``: their ids; None:
        all of this queue), as ``zevents.redis.RedisQueue.restore`` does; original id ->
        new id."""
        job = restoring(self.name, self.codec, ids, store or JsonLinesArchive())
        return await self._job(job, f"restore to {self.name!r}")

    async def history(
        self, identifier: str, *, until: Until | None = None, store: ArchiveStore | None = None
    ) -> list[HistoryEntry]:
        """Every stored message sent with ``identifier`` (in the queue and the archive),
        oldest first, each once; ``until`` as in ``zevents.redis.RedisQueue.history``.

        Raises:
            ConfigError: ``until`` is not a moment (before any I/O).
        """
        limit = None if until is None else until_ms(until)
        await self.open()
        chosen = store or JsonLinesArchive()
        job = reading_history(
            self.name, self._keys, self._shape, self.codec, identifier, limit, chosen
        )
        return await self._job(job, f"history of {self.name!r}")

    async def replay(
        self, identifier: str, *, until: Until | None = None, store: ArchiveStore | None = None
    ) -> Any:
        """The state the payloads of ``identifier``'s messages make, oldest first (see
        ``history`` and ``zevents.redis.replay.merge_payloads``)."""
        return merge_payloads(await self.history(identifier, until=until, store=store))

    async def _remove(self, removal: Removal) -> PurgeResult:
        if not await self.exists():
            raise await self.runner.run(rec.not_found(self.name, self.prefix), "list queues")
        job = removal.job(self.name, self._keys, self._shape)
        return await self._job(job, removal.action(self.name))

    async def _job(self, job: Job[T], action: str) -> T:
        """Run a history job (its writes prepared and replicated as sends are)."""

        async def write(plan: Plan[Any]) -> Any:
            await self._ready_to_write()
            return await self._write(plan, action)

        async def opened() -> tuple[Driver, rec.QueueShape]:
            await self.open()
            return self._opened(), self._shape

        return await run_job(job, lambda plan: self.runner.run(plan, action), write, opened)

    async def flush_failed(self) -> int:
        """Empty the failed store; returns how many messages were dropped."""
        driver = await self._ready_to_write()
        return await self._read(driver.flush_failed(), "flush failed")

    # --- lifetime -------------------------------------------------------------------

    async def aclose(self) -> None:
        """Wait for sends in flight, then close the connections this queue opened."""
        await self._batcher.drain()
        await self.runner.aclose(client=self._owns_client)

    async def __aenter__(self) -> RedisQueue:
        try:
            return await self.open()
        except BaseException:
            await self.aclose()  # no __aexit__ follows a failed __aenter__
            raise

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()
