"""``RedisQueue``: send events into a Redis-backed queue and manage its failed store."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from zevents.errors import ConfigError
from zevents.redis._client import Runner, close, connect, resolve_url
from zevents.redis.consumer import Consumer
from zevents.redis.defaults import (
    DEFAULT_GROUP,
    DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_RECLAIMS,
    DEFAULT_MIN_REPLICAS,
    DEFAULT_PREFIX,
    DEFAULT_REPLICA_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    DRIVERS,
)
from zevents.redis.failed_store import FailedStore
from zevents.redis.history import QueueHistory, keep_finished_seconds
from zevents.redis.keys import QueueKeys, unique_name
from zevents.redis.message import BodyCodec
from zevents.redis.protocol import Driver, Plan, make_driver
from zevents.redis.protocol.records import (
    QueueRecord,
    QueueShape,
    check_record,
    has_data,
    not_found,
    read_record,
    record,
    settle_shape,
)
from zevents.redis.protocol.sending import send_item, send_items
from zevents.redis.registry import WorkerRegistry
from zevents.redis.replication import Replication, replicated
from zevents.serializers import Serializer, resolve_serializer

logger = logging.getLogger(__name__)

__all__ = ["RedisQueue"]

T = TypeVar("T")


class RedisQueue(QueueHistory, FailedStore):
    """A durable queue of events in Redis.

    A queue is also a bus receiver: ``bus.listen("orders.*", queue)`` enqueues every
    matching event. Workers read it through ``consumer()``. Its history methods
    (``purge``, ``archive``, ``restore``, ``history``, ``replay``, ``finished``,
    ``clear_finished``) come from ``zevents.redis.history.QueueHistory``.

    A queue records its driver and priority levels in Redis when it is first written
    to, so a later ``RedisQueue(name)`` opens it as it is, and one that asks for another
    driver or other levels is refused (``ConfigError``) instead of making a second set of
    keys. Opening and inspecting a queue writes nothing.

    Args:
        name: The queue name; every key of the queue carries the hash tag ``{name}``.
        url: ``redis://`` URL; ``None``: ``connection``, else ``$ZEVENTS_REDIS_URL``,
            else the config file's ``[redis.default]``, else the embedded Redis
            (``zevents[embedded]``).
        driver: ``"list"``, ``"sorted-set"``, ``"stream"`` or ``"set"``; ``None``: as
            recorded, else ``"list"``.
        priorities: The priority levels in use, in any order; the highest is taken
            first. ``None``: as recorded, else the single level ``0``.
        group: The stream consumer group this object reads as (stream driver; default
            ``"default"``). A group given here is created (if missing) when the queue is
            constructed, so it gets every message still in the stream and every one sent
            later (unless ``create_group=False``: a reader that only inspects); the
            default group is created by the first send or consumer.
        consumer: The consumer name its consumers read as (stream driver); default
            ``host:pid:<random>``, unique to this queue object (two objects reading as
            one consumer could not be fenced from each other).
        default_priority: The level of messages sent without one, and of stored ones
            that name none (default: as recorded, else the lowest).
        prefix: Prefix of every key.
        max_reclaims: Stream driver: claims of a silent consumer's entry before it fails.
        socket_timeout: Seconds any single Redis call may take.
        client: An existing redis-py client (``redis.Redis`` or ``RedisCluster``) to use
            instead of ``url`` (not closed here).
        serializer: Writes and reads the stored body (a JSON object, see
            ``BodyCodec``): a ``Serializer``, its class or dotted path; ``None`` is JSON.
        connection: The name of a ``[redis.NAME]`` table of the config file (see
            ``zevents.redis.connections``), instead of ``url``.
        keep_finished: Keep a record of each message this object's workers finish, for
            this long (``"14d"``, or seconds; see ``finished()``); None keeps none.
        min_replicas: A send (and ``retry_failed``) is confirmed only once this many
            replicas have it (Redis ``WAIT``), else it raises ``ReplicationError``;
            0 takes the master's word (replication is asynchronous).
        replica_timeout: Seconds a send waits for those replicas.

    Raises:
        ConfigError: Bad options, or a driver or levels other than the queue's own.
        EmbeddedRedisMissing: No URL, and no embedded Redis installed.
        QueueUnavailable: Redis cannot be reached.
    """

    def __init__(
        self,
        name: str,
        url: str | None = None,
        *,
        driver: str | None = None,
        priorities: Iterable[int] | None = None,
        group: str | None = None,
        consumer: str | None = None,
        default_priority: int | None = None,
        prefix: str = DEFAULT_PREFIX,
        max_reclaims: int = DEFAULT_MAX_RECLAIMS,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        client: Any = None,
        serializer: Serializer | type | str | None = None,
        connection: str | None = None,
        keep_finished: str | float | None = None,
        create_group: bool = True,
        min_replicas: int = DEFAULT_MIN_REPLICAS,
        replica_timeout: float = DEFAULT_REPLICA_TIMEOUT,
    ) -> None:
        QueueKeys(name, (0,), prefix=prefix)  # checks the name before any I/O
        if driver is not None and driver not in DRIVERS:
            raise ConfigError(
                f"unknown driver {driver!r}; choose one of {', '.join(DRIVERS)}", option="driver"
            )
        self.name = name
        self.prefix = prefix
        self.group = group or DEFAULT_GROUP
        self.consumer_name = consumer or unique_name()
        self.max_reclaims = max_reclaims
        self.codec = BodyCodec(resolve_serializer(serializer))
        self.keep_finished = keep_finished_seconds(keep_finished)
        #: The replicas a send waits for (``min_replicas``, ``replica_timeout``).
        self.replication = Replication(min_replicas, replica_timeout).within(socket_timeout)
        self._socket_timeout = socket_timeout
        self._asked = (driver, tuple(priorities) if priorities else None, default_priority)
        if priorities is not None or default_priority is not None:
            settle_shape(name, None, *self._asked)  # bad levels fail here, before any I/O
        self._owns_client = client is None
        self.url = resolve_url(url, connection) if client is None else (url or "redis://(client)")
        self.client = connect(self.url, socket_timeout=socket_timeout) if client is None else client
        self.runner = Runner(self.client, self.url, keep=self._owns_client)
        #: What the queue was created as (None until it is opened, or if it is new).
        self.record: QueueRecord | None = None
        self._opened = self._prepared = False
        self._send_action = f"send to {name!r}"
        stream = (driver or "stream") == "stream"
        try:  # a reader that names its group gets every message from now on: it exists
            # before any other reader's acknowledgements can trim the stream
            if group is not None and create_group and stream and self.driver_name == "stream":
                self._prepare()
        except BaseException:
            self.close()  # the client made above, not left open
            raise

    # --- what the queue is: read on first use -------------------------------------

    def _open(self) -> None:
        """Read the queue's record and settle its driver and levels (the first
        operation does this; construction does no I/O)."""
        found = self.runner.run(read_record(self.name, self.prefix), f"open {self.name!r}")
        shape = settle_shape(self.name, found, *self._asked)
        self.record = found
        self._shape = shape
        stream = shape.driver == "stream"
        self._keys = QueueKeys(self.name, shape.priorities, stream=stream, prefix=self.prefix)
        default, reclaims = shape.default_priority, self.max_reclaims
        self._driver = make_driver(
            shape.driver, self._keys, default, self.codec, group=self.group, max_reclaims=reclaims
        )
        self._opened = True

    def _prepare(self) -> None:
        """Before the first write: record the queue (if it is new) and let the driver
        prepare (the stream driver creates its consumer group)."""
        if not self._opened:
            self._open()
        shape = self._shape
        plan = record(self._keys, shape.driver, shape.default_priority)
        found = self.runner.run(plan, f"record {self.name!r}")
        check_record(found, shape)
        self.record = found
        self.runner.run(self._driver.prepare(), f"create group {self.group!r}")
        self._prepared = True

    def _write(self, plan: Plan[T], action: str, min_replicas: int | None = None) -> T:
        """Run a plan that writes messages, the queue prepared first, confirmed by
        ``min_replicas`` replicas (None: the queue's ``replication``)."""
        if not self._prepared:
            self._prepare()
        wanted = self.replication.asked(min_replicas, self._socket_timeout)
        return self.runner.run(
            replicated(plan, wanted, self._keys.key("replicated"), action), action
        )

    @property
    def shape(self) -> QueueShape:
        """Its driver, priority levels and default priority (opened on first use)."""
        if not self._opened:
            self._open()
        return self._shape

    @property
    def keys(self) -> QueueKeys:
        """The queue's keys."""
        if not self._opened:
            self._open()
        return self._keys

    @property
    def driver(self) -> Driver:
        """The sans-I/O driver (``zevents.redis.protocol``)."""
        if not self._opened:
            self._open()
        return self._driver

    @property
    def priorities(self) -> tuple[int, ...]:
        """The priority levels, highest first."""
        return self.shape.priorities

    @property
    def default_priority(self) -> int:
        """The level of messages sent without one."""
        return self.shape.default_priority

    @property
    def driver_name(self) -> str:
        """``"list"``, ``"sorted-set"``, ``"stream"`` or ``"set"``."""
        return self.shape.driver

    def __repr__(self) -> str:
        driver = self._shape.driver if self._opened else (self._asked[0] or "as recorded")
        return f"<RedisQueue {self.name!r} driver={driver}>"

    # --- sending ------------------------------------------------------------------

    def __call__(self, event: str, payload: Any = None) -> str:
        """Enqueue ``event`` (a queue is a bus receiver)."""
        return self.send(event, payload)

    def send(
        self,
        event: str,
        payload: Any = None,
        *,
        delay: float = 0,
        execute_at: datetime | None = None,
        priority: int | None = None,
        identifier: str | None = None,
        serial_group: str | None = None,
        unique: bool = False,
        min_replicas: int | None = None,
    ) -> str:
        """Enqueue one event in one round trip.

        Args:
            event: The event name workers fire.
            payload: Anything the serializer writes (JSON by default).
            delay: Seconds before it is due (Redis clock).
            execute_at: An absolute due time instead of ``delay`` (naive means UTC).
            priority: One of the queue's levels (default: ``default_priority``).
            identifier: A label to find it by (``unique``, ``unfinished``).
            serial_group: Messages of one group run one at a time, in order.
            unique: With ``identifier``: if an unfinished message has it, enqueue
                nothing and return that message's id.
            min_replicas: Replicas to wait for, instead of the queue's ``min_replicas``.

        Returns:
            The message id.

        Raises:
            ConfigError: Bad options.
            QueueError: Redis refused the command.
            QueueUnavailable: Redis cannot be reached.
            ReplicationError: Fewer than ``min_replicas`` replicas acknowledged it.
            EncodeError: ``payload`` cannot be serialized.
        """
        if not self._prepared:
            self._prepare()
        options = {
            "delay": delay,
            "execute_at": execute_at,
            "priority": priority,
            "identifier": identifier,
            "serial_group": serial_group,
            "unique": unique,
        }
        item = send_item(self._shape, self.codec, event, payload, options)
        return self._write(self._driver.send([item]), self._send_action, min_replicas)[0]

    def send_many(
        self,
        events: Iterable[tuple[str, Any] | Mapping[str, Any]],
        *,
        min_replicas: int | None = None,
    ) -> list[str]:
        """Enqueue many events in one round trip (scripts of 1,000 in one pipeline).

        Args:
            events: ``(event, payload)`` pairs, or mappings with ``event``, ``payload`` and
                any keyword of ``send``.
            min_replicas: As for ``send``.

        Returns:
            The ids, in order.
        """
        if not self._prepared:
            self._prepare()
        items = send_items(self._shape, self.codec, events)
        if not items:
            return []
        return self._write(self._driver.send_many(items), self._send_action, min_replicas)

    # --- consuming ------------------------------------------------------------------

    def check_send(self, **options: Any) -> None:
        """Check keywords of ``send`` now, before any message is at stake (a bridge does
        when it starts); raises ``ConfigError`` (``option`` names the keyword)."""
        send_item(self.shape, self.codec, "check", None, options)

    def consumer(
        self,
        *,
        lease: float = DEFAULT_KEEP_ALIVE,
        serve: str | Iterable[int] | None = None,
        name: str | None = None,
    ) -> Consumer:
        """The consumer side of this queue: take messages under leases and settle them.

        Args:
            lease: Seconds a taken message stays leased without a renewal.
            serve: The priority levels to take from: a list or a range string
                (``"20-40"``); default all.
            name: The consumer name (stream driver); default the queue's ``consumer``.

        Raises:
            ConfigError: A bad lease or priority selection.
        """
        if not self._prepared:
            self._prepare()
        return Consumer(
            self.name,
            self._driver,
            self.runner,
            self.codec,
            priorities=self._shape.priorities,
            lease=lease,
            serve=serve,
            name=name or self.consumer_name,
            keep_finished=self.keep_finished,
        )

    def registry(self) -> WorkerRegistry:
        """The worker registry of this queue's server and key prefix."""
        return WorkerRegistry(client=self.client, url=self.url, prefix=self.prefix)

    # --- inspection ---------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the queue was ever used: it has a record, or keys holding messages (a
        queue another program wrote to)."""
        keys = self.keys
        return self.record is not None or self.runner.run(has_data(keys), "look for it")

    def stats(self) -> dict[str, Any]:
        """Counts: ``ready`` (priority → count), ``delayed``, ``processing``, ``serial``,
        ``failed``; ``statuses``: message id → ``{"status", "percent"}`` set by
        receivers; ``oldest_ready_at``: when the message first in line was sent (Unix
        seconds, Redis clock; None when none is ready, or on the ``set`` driver).

        Raises:
            QueueNotFound: No queue of this name was ever used.
        """
        if not self.exists():
            raise self.runner.run(not_found(self.name, self.prefix), "list queues")
        return self.runner.run(self.driver.stats(), f"stats of {self.name!r}")

    def unfinished(self, identifiers: Iterable[str]) -> set[str]:
        """The identifiers that still have a message queued, delayed or processing."""
        wanted = list(identifiers)
        return self.runner.run(self.driver.unfinished(wanted), f"unfinished of {self.name!r}")

    # --- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections this queue opened."""
        self.runner.close()
        if self._owns_client:
            close(self.client)

    def __enter__(self) -> RedisQueue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
