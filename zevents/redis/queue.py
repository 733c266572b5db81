"""``RedisQueue``: send events into a Redis-backed queue and manage its failed store."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from zevents.errors import ConfigError, QueueNotFound
from zevents.eventbus import matcher
from zevents.redis._client import Runner, connect, resolve_url
from zevents.redis.consumer import Consumer
from zevents.redis.defaults import (
    DEFAULT_GROUP,
    DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_RECLAIMS,
    DEFAULT_PREFIX,
    DEFAULT_SOCKET_TIMEOUT,
    DRIVERS,
)
from zevents.redis.keys import QueueKeys, unique_name
from zevents.redis.message import BodyCodec, FailedMessage, content_id
from zevents.redis.protocol import Driver, Plan, SendItem, make_driver
from zevents.redis.protocol.records import (
    QueueRecord,
    has_data,
    read_record,
    read_records,
    record,
)
from zevents.redis.registry import WorkerRegistry
from zevents.serializers import Serializer, resolve_serializer

logger = logging.getLogger(__name__)

__all__ = ["RedisQueue"]

T = TypeVar("T")

_SEND_OPTIONS = frozenset(
    {"delay", "execute_at", "priority", "identifier", "serial_group", "unique"}
)


def _csv(levels: Iterable[int]) -> str:
    return ",".join(str(p) for p in levels)


def _settle(
    name: str,
    recorded: QueueRecord | None,
    driver: str | None,
    priorities: Iterable[int] | None,
    default: int | None,
) -> tuple[str, tuple[int, ...], int]:
    """The driver, levels and default priority to open queue ``name`` with: what was
    asked, checked against what the queue was created as; what is recorded otherwise."""
    if driver is not None and driver not in DRIVERS:
        raise ConfigError(
            f"unknown driver {driver!r}; choose one of {', '.join(DRIVERS)}", option="driver"
        )
    levels = tuple(sorted({int(p) for p in priorities}, reverse=True)) if priorities else None
    if recorded is not None:
        if driver is not None and driver != recorded.driver:
            raise ConfigError(
                f"queue {name!r} is a {recorded.driver} queue (priorities "
                f"{_csv(recorded.priorities)}), not {driver}: give driver={recorded.driver!r}"
                " or none",
                option="driver",
            )
        if levels is not None and levels != recorded.priorities:
            raise ConfigError(
                f"queue {name!r} has the priorities {_csv(recorded.priorities)}, not "
                f"{_csv(levels)}: give those or none",
                option="priorities",
            )
        driver, levels = recorded.driver, recorded.priorities
        default = recorded.default_priority if default is None else default
    levels = levels or (0,)
    default = levels[-1] if default is None else default
    if default not in levels:
        raise ConfigError(
            f"default_priority {default} is not one of {levels}", option="default_priority"
        )
    return driver or "list", levels, default


class RedisQueue:
    """A durable queue of events in Redis.

    A queue is also a bus receiver: ``bus.listen("orders.*", queue)`` enqueues every
    matching event. Workers read it through ``consumer()``.

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
            later; the default group is created by the first send or consumer.
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
        self._asked = (driver, tuple(priorities) if priorities else None, default_priority)
        if priorities is not None or default_priority is not None:
            _settle(name, None, *self._asked)  # bad levels fail here, before any I/O
        self._owns_client = client is None
        self.url = resolve_url(url, connection) if client is None else (url or "redis://(client)")
        self.client = connect(self.url, socket_timeout=socket_timeout) if client is None else client
        self.runner = Runner(self.client, self.url)
        #: What the queue was created as (None until it is opened, or if it is new).
        self.record: QueueRecord | None = None
        self._opened = self._prepared = False
        self._send_action = f"send to {name!r}"
        if group is not None and (driver or "stream") == "stream" and self.driver_name == "stream":
            # A reader that names its group gets every message from now on: its group
            # exists before any other reader's acknowledgements can trim the stream.
            self._prepare()

    # --- what the queue is: read on first use -------------------------------------

    def _open(self) -> None:
        """Read the queue's record and settle its driver and levels (the first
        operation does this; construction does no I/O)."""
        found = self.runner.run(read_record(self.name, self.prefix), f"open {self.name!r}")
        driver, levels, default = _settle(self.name, found, *self._asked)
        self.record = found
        self._keys = QueueKeys(self.name, levels, stream=driver == "stream", prefix=self.prefix)
        self._levels = levels
        self._default = default
        self._driver_name = driver
        self._driver = make_driver(driver, self._keys, default, self.codec, self.group)
        self._opened = True

    def _prepare(self) -> None:
        """Before the first write: record the queue (if it is new) and let the driver
        prepare (the stream driver creates its consumer group)."""
        if not self._opened:
            self._open()
        found = self.runner.run(
            record(self._keys, self._driver_name, self._default), f"record {self.name!r}"
        )
        if (found.driver, found.priorities) != (self._driver_name, self._levels):
            raise ConfigError(
                f"queue {self.name!r} was just created elsewhere as a {found.driver} queue "
                f"(priorities {_csv(found.priorities)}); open it again",
                option="driver",
            )
        self.record = found
        self.runner.run(self._driver.prepare(), f"create group {self.group!r}")
        self._prepared = True

    def _write(self, plan: Plan[T], action: str) -> T:
        """Run a plan that writes, the queue prepared first."""
        if not self._prepared:
            self._prepare()
        return self.runner.run(plan, action)

    @property
    def keys(self) -> QueueKeys:
        """The queue's keys."""
        if not self._opened:
            self._open()
        return self._keys

    @property
    def priorities(self) -> tuple[int, ...]:
        """The priority levels, highest first."""
        if not self._opened:
            self._open()
        return self._levels

    @property
    def default_priority(self) -> int:
        """The level of messages sent without one."""
        if not self._opened:
            self._open()
        return self._default

    @property
    def driver_name(self) -> str:
        """``"list"``, ``"sorted-set"``, ``"stream"`` or ``"set"``."""
        if not self._opened:
            self._open()
        return self._driver_name

    @property
    def driver(self) -> Driver:
        """The sans-I/O driver (``zevents.redis.protocol``)."""
        if not self._opened:
            self._open()
        return self._driver

    def __repr__(self) -> str:
        driver = self._driver_name if self._opened else (self._asked[0] or "as recorded")
        return f"<RedisQueue {self.name!r} driver={driver}>"

    # --- sending ------------------------------------------------------------------

    def __call__(self, event: str, payload: Any = None) -> str:
        """Enqueue ``event`` (so a queue can be a bus receiver)."""
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

        Returns:
            The message id.

        Raises:
            ConfigError: Bad options.
            QueueError: Redis refused the command.
            QueueUnavailable: Redis cannot be reached.
            EncodeError: ``payload`` cannot be serialized.
        """
        if not self._prepared:
            self._prepare()
        item = self._item(
            event, payload, delay, execute_at, priority, identifier, serial_group, unique
        )
        return self.runner.run(self._driver.send([item]), self._send_action)[0]

    def send_many(self, events: Iterable[tuple[str, Any] | Mapping[str, Any]]) -> list[str]:
        """Enqueue many events in one round trip (scripts of 1,000 in one pipeline).

        Args:
            events: ``(event, payload)`` pairs, or mappings with ``event``, ``payload`` and
                any keyword of ``send``.

        Returns:
            The ids, in order.
        """
        if not self._prepared:
            self._prepare()
        items: list[SendItem] = []
        for entry in events:
            if isinstance(entry, Mapping):
                options = dict(entry)
                event = options.pop("event")
                payload = options.pop("payload", None)
                items.append(self._item_from(event, payload, options))
            else:
                items.append(self._item(entry[0], entry[1], 0, None, None, None, None, False))
        if not items:
            return []
        return self.runner.run(self._driver.send_many(items), self._send_action)

    def _item_from(self, event: str, payload: Any, options: dict[str, Any]) -> SendItem:
        unknown = set(options) - _SEND_OPTIONS
        if unknown:
            raise ConfigError(f"unknown send options {sorted(unknown)}", option="send_many")
        return self._item(
            event,
            payload,
            options.get("delay", 0),
            options.get("execute_at"),
            options.get("priority"),
            options.get("identifier"),
            options.get("serial_group"),
            bool(options.get("unique", False)),
        )

    def _item(
        self,
        event: str,
        payload: Any,
        delay: float,
        execute_at: datetime | None,
        priority: int | None,
        identifier: str | None,
        serial_group: str | None,
        unique: bool,
    ) -> SendItem:
        if not isinstance(event, str) or not event:
            raise ConfigError("event must be a non-empty string", option="event")
        prio = self._default if priority is None else priority
        if prio not in self._levels:
            raise ConfigError(
                f"priority {prio} is not one of the queue's levels {self._levels}",
                option="priority",
            )
        if unique and identifier is None:
            raise ConfigError("unique=True needs an identifier", option="unique")
        if serial_group is not None and (not serial_group or "\0" in serial_group):
            raise ConfigError(
                "serial_group must be a non-empty string without NUL", option="serial_group"
            )
        at_ms: int | None = None
        if execute_at is not None:
            if execute_at.tzinfo is None:
                execute_at = execute_at.replace(tzinfo=timezone.utc)
            at_ms = int(execute_at.timestamp() * 1000)
        if self._driver_name == "set" and (delay or at_ms is not None):
            raise ConfigError(
                "the set driver has no delays; use list, sorted-set or stream", option="delay"
            )
        if delay < 0:
            raise ConfigError("delay must not be negative", option="delay")
        body = self.codec.encode(event, payload, prio, identifier, serial_group)
        msg_id = content_id(event, payload, identifier) if self._driver_name == "set" else ""
        return SendItem(
            body, prio, msg_id, int(delay * 1000), at_ms, identifier, unique, serial_group
        )

    # --- consuming ------------------------------------------------------------------

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
            priorities=self._levels,
            max_reclaims=self.max_reclaims,
            lease=lease,
            serve=serve,
            name=name or self.consumer_name,
        )

    def registry(self) -> WorkerRegistry:
        """The worker registry of this queue's server and key prefix."""
        return WorkerRegistry(client=self.client, url=self.url, prefix=self.prefix)

    # --- inspection ---------------------------------------------------------------

    def exists(self) -> bool:
        """Whether the queue was ever used: it has a record, or keys holding messages (a
        queue another program wrote to)."""
        if not self._opened:
            self._open()
        if self.record is not None:
            return True
        return self.runner.run(has_data(self._keys), f"look for {self.name!r}")

    def stats(self) -> dict[str, Any]:
        """Counts: ``ready`` (priority → count), ``delayed``, ``processing``, ``serial``,
        ``failed``, and ``statuses``: message id → ``{"status", "percent"}`` set by
        receivers.

        Raises:
            QueueNotFound: No queue of this name was ever used.
        """
        self._must_exist()
        return self.runner.run(self.driver.stats(), f"stats of {self.name!r}")

    def _must_exist(self) -> None:
        if self.exists():
            return
        known = [r.name for r in self.runner.run(read_records(self.prefix), "list queues")]
        raise QueueNotFound(
            f"no queue {self.name!r} under prefix {self.prefix!r}; "
            + (f"the queues are: {', '.join(known)}" if known else "there is none yet"),
            name=self.name,
            known=known,
        )

    def unfinished(self, identifiers: Iterable[str]) -> set[str]:
        """The identifiers that still have a message queued, delayed or processing."""
        wanted = list(identifiers)
        return self.runner.run(self.driver.unfinished(wanted), f"unfinished of {self.name!r}")

    # --- failed store ---------------------------------------------------------------

    def failed(self) -> list[FailedMessage]:
        """The failed store, oldest failure first."""
        return self.runner.run(self.driver.failed(), f"failed of {self.name!r}")

    def retry_failed(self, ids: Iterable[str] | None = None, event: str | None = None) -> int:
        """Put failed messages back to be tried afresh; returns how many.

        Each goes back at the priority its body names (the default when it names none).

        Args:
            ids: Only these failed-store ids (default: all).
            event: Only messages of this event name (or ``*`` pattern).
        """
        wanted = set(ids) if ids is not None else None
        matches = matcher(event) if event else None
        chosen = [
            entry
            for entry in self.failed()
            if (wanted is None or entry.id in wanted)
            and (matches is None or (entry.event is not None and matches(entry.event)))
        ]
        return self._write(self.driver.retry_failed(chosen), f"retry failed of {self.name!r}")

    def flush_failed(self) -> int:
        """Empty the failed store; returns how many messages were dropped."""
        return self._write(self.driver.flush_failed(), f"flush failed of {self.name!r}")

    # --- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections this queue opened."""
        if self._owns_client:
            self.client.close()
            self.client.connection_pool.disconnect()

    def __enter__(self) -> RedisQueue:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
