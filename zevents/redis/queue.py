"""``RedisQueue``: send events into a Redis-backed queue and manage its failed store."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import orjson
import redis

from zevents.errors import QueueError
from zevents.redis._client import (
    as_str,
    connect,
    resolve_url,
    translated,
    translation,
)
from zevents.redis.defaults import (
    DEFAULT_GROUP,
    DEFAULT_MAX_RECLAIMS,
    DEFAULT_PREFIX,
    DEFAULT_SOCKET_TIMEOUT,
    DRIVERS,
)
from zevents.redis.drivers import CoreDriver, Driver, SendItem, StreamDriver
from zevents.redis.drivers.base import ScriptRunner
from zevents.redis.keys import QueueKeys
from zevents.redis.message import (
    FailedMessage,
    Message,
    content_id,
    decode_body,
    encode_body,
    failed_entry,
)

logger = logging.getLogger(__name__)

__all__ = ["RedisQueue"]
# Messages per script call in send_many (all calls go in one pipeline).
_BATCH = 1000


class RedisQueue:
    """A durable queue of events in Redis.

    A queue is also a bus receiver: ``bus.listen("orders.*", queue)`` enqueues every
    matching event.

    Args:
        name: The queue name; every key of the queue carries the hash tag ``{name}``.
        url: ``redis://`` URL; ``None`` reads ``$ZEVENTS_REDIS_URL``.
        driver: ``"list"``, ``"sorted-set"``, ``"stream"`` or ``"set"``.
        priorities: The priority levels in use, in any order; the highest is taken
            first. ``None`` means the single level ``0``.
        group: The stream consumer group this object reads as (stream driver).
        consumer: The consumer name in the group; default ``host:pid:<random>``, unique
            to this object.
        default_priority: The level of messages sent without one (default: the lowest).
        prefix: Prefix of every key.
        max_reclaims: Stream driver: claims of a silent consumer's entry before it fails.
        socket_timeout: Seconds any single Redis call may take.
        client: An existing redis-py client to use instead of ``url`` (not closed here).

    Raises:
        QueueError: Bad options, or no URL at all.
        QueueUnavailable: The stream driver could not create its group.
    """

    def __init__(
        self,
        name: str,
        url: str | None = None,
        *,
        driver: str = "list",
        priorities: Iterable[int] | None = None,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        default_priority: int | None = None,
        prefix: str = DEFAULT_PREFIX,
        max_reclaims: int = DEFAULT_MAX_RECLAIMS,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        client: redis.Redis | None = None,
    ) -> None:
        if driver not in DRIVERS:
            raise QueueError(f"unknown driver {driver!r}; choose one of {', '.join(DRIVERS)}")
        levels = tuple(sorted({int(p) for p in priorities}, reverse=True)) if priorities else (0,)
        if default_priority is None:
            default_priority = levels[-1]
        if default_priority not in levels:
            raise QueueError(f"default_priority {default_priority} is not one of {levels}")
        try:
            self.keys = QueueKeys(name, levels, stream=driver == "stream", prefix=prefix)
        except ValueError as exc:
            raise QueueError(str(exc)) from exc
        if client is None:
            self.url = resolve_url(url)
            self.client = connect(self.url, socket_timeout=socket_timeout)
            self._owns_client = True
        else:
            self.url = url or "redis://(client)"
            self.client = client
            self._owns_client = False
        self.name = name
        self.priorities = levels
        self.default_priority = default_priority
        self.group = group
        # Unique per queue object: two objects reading as one consumer would defeat fencing.
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.max_reclaims = max_reclaims
        self.driver_name = driver
        runner = ScriptRunner(self.client, self.keys, driver)
        self.driver: Driver
        if driver == "stream":
            stream = StreamDriver(runner, group, self.consumer)
            with translated(self.url, f"create group {group!r}"):
                stream.create_group()
            self.driver = stream
        else:
            self.driver = CoreDriver(runner, driver)

    def __repr__(self) -> str:
        return f"<RedisQueue {self.name!r} driver={self.driver_name}>"

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
            payload: Any JSON-serializable value.
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
            QueueError: Bad options, or Redis refused the command.
            QueueUnavailable: Redis cannot be reached.
            EncodeError: ``payload`` is not JSON-serializable.
        """
        item = self._item(
            event, payload, delay, execute_at, priority, identifier, serial_group, unique
        )
        try:  # not `with translated(...)`: this is the hot path
            return self.driver.send([item])[0]
        except redis.RedisError as exc:
            raise translation(self.url, f"send to {self.name!r}", exc) from exc

    def send_many(self, events: Iterable[tuple[str, Any] | Mapping[str, Any]]) -> list[str]:
        """Enqueue many events in one round trip (scripts of 1,000 in one pipeline).

        Args:
            events: ``(event, payload)`` pairs, or mappings with ``event``, ``payload`` and
                any keyword of ``send``.

        Returns:
            The ids, in order.
        """
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
        with translated(self.url, f"send to {self.name!r}"):
            runner = self.driver.runner
            if all(item.is_plain for item in items):
                if len(items) <= _BATCH:
                    return [as_str(i) for i in runner.send_plain_many(items)]
                pipe = self.client.pipeline(transaction=False)
                for start in range(0, len(items), _BATCH):
                    runner.send_plain_many(items[start : start + _BATCH], client=pipe)
                return [as_str(i) for reply in pipe.execute() for i in reply]
            if len(items) <= _BATCH:
                return self.driver.send(items)
            pipe = self.client.pipeline(transaction=False)
            for start in range(0, len(items), _BATCH):
                args: list[Any] = []
                for item in items[start : start + _BATCH]:
                    args.extend(item.args())
                runner("send.lua", args, client=pipe)
            return [as_str(i) for reply in pipe.execute() for i in reply]

    def _item_from(self, event: str, payload: Any, options: dict[str, Any]) -> SendItem:
        unknown = set(options) - {
            "delay",
            "execute_at",
            "priority",
            "identifier",
            "serial_group",
            "unique",
        }
        if unknown:
            raise QueueError(f"unknown send options {sorted(unknown)}")
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
            raise QueueError("event must be a non-empty string")
        prio = self.default_priority if priority is None else priority
        if prio not in self.priorities:
            raise QueueError(f"priority {prio} is not one of the queue's levels {self.priorities}")
        if unique and identifier is None:
            raise QueueError("unique=True needs an identifier")
        if serial_group is not None and (not serial_group or "\0" in serial_group):
            raise QueueError("serial_group must be a non-empty string without NUL")
        at_ms: int | None = None
        if execute_at is not None:
            if execute_at.tzinfo is None:
                execute_at = execute_at.replace(tzinfo=timezone.utc)
            at_ms = int(execute_at.timestamp() * 1000)
        if self.driver_name == "set" and (delay or at_ms is not None):
            raise QueueError("the set driver has no delays; use list, sorted-set or stream")
        if delay < 0:
            raise QueueError("delay must not be negative")
        body = encode_body(event, payload, prio, identifier, serial_group)
        msg_id = content_id(event, payload, identifier) if self.driver_name == "set" else ""
        return SendItem(
            body, prio, msg_id, int(delay * 1000), at_ms, identifier, unique, serial_group
        )

    # --- inspection ---------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts: ``ready`` (priority → count), ``delayed``, ``processing``, ``failed``.

        Also ``statuses``: message id → ``{"status", "percent"}`` set by receivers.
        """
        with translated(self.url, f"stats of {self.name!r}"):
            counts = self.driver.counts()
            counts["failed"] = int(self.client.hlen(self.keys.key("failed")))
            raw = self.client.hgetall(self.keys.key("status"))
        counts["statuses"] = {as_str(k): orjson.loads(v) for k, v in raw.items()}
        return counts

    def unfinished(self, identifiers: Iterable[str]) -> set[str]:
        """The identifiers that still have a message queued, delayed or processing."""
        wanted = list(identifiers)
        if not wanted:
            return set()
        with translated(self.url, f"unfinished of {self.name!r}"):
            counts = self.client.hmget(self.keys.key("idents"), wanted)
        return {
            ident for ident, n in zip(wanted, counts, strict=True) if n is not None and int(n) > 0
        }

    # --- failed store ---------------------------------------------------------------

    def failed(self) -> list[FailedMessage]:
        """The failed store, oldest failure first."""
        with translated(self.url, f"failed of {self.name!r}"):
            records = self.client.hgetall(self.keys.key("failed"))
            ids = list(records)
            bodies = self.client.hmget(self.keys.key("msgs"), ids) if ids else []
        out = [
            failed_entry(as_str(k), _bytes(records[k]), None if body is None else _bytes(body))
            for k, body in zip(ids, bodies, strict=True)
        ]
        out.sort(key=lambda f: (f.failed_at, f.id))
        return out

    def retry_failed(self, ids: Iterable[str] | None = None, event: str | None = None) -> int:
        """Put failed messages back to be tried afresh; returns how many.

        Args:
            ids: Only these failed-store ids (default: all).
            event: Only messages of this event name (or ``*`` pattern).
        """
        from zevents.eventbus import matcher

        wanted = set(ids) if ids is not None else None
        matches = matcher(event) if event else None
        args: list[Any] = []
        for entry in self.failed():
            if wanted is not None and entry.id not in wanted:
                continue
            if matches is not None and (entry.event is None or not matches(entry.event)):
                continue
            fields: dict[str, Any] = {}
            if entry.body:
                try:
                    fields = decode_body(entry.body)
                except ValueError:
                    fields = {}
            prio = fields.get("priority", self.default_priority)
            if prio not in self.priorities:
                prio = self.default_priority
            args.extend(self.driver.retry_failed_args(entry.id, fields, prio))
        if not args:
            return 0
        with translated(self.url, f"retry failed of {self.name!r}"):
            return int(self.driver.runner("retry_failed.lua", args))

    def flush_failed(self) -> int:
        """Empty the failed store; returns how many messages were dropped."""
        key = self.keys.key("failed")
        with translated(self.url, f"flush failed of {self.name!r}"):
            ids = list(self.client.hkeys(key))
            if not ids:
                return 0
            pipe = self.client.pipeline(transaction=True)
            pipe.hdel(key, *ids)
            pipe.hdel(self.keys.key("msgs"), *ids)
            return int(pipe.execute()[0])

    # --- used by the worker and by current() ----------------------------------------

    def _touch_current(self, message: Message) -> None:
        with translated(self.url, f"touch {message.id!r}"):
            lost = self.driver.touch([message.taken], message.lease_ms)
        if lost:
            raise QueueError(f"message {message.id} is no longer leased to this worker")

    def _set_status(self, message: Message) -> None:
        value = orjson.dumps({"status": message.status, "percent": message.percent})
        with translated(self.url, f"status of {message.id!r}"):
            self.client.hset(self.keys.key("status"), message.id, value)

    # --- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Close the connections this queue opened."""
        if self._owns_client:
            self.client.close()
            self.client.connection_pool.disconnect()

    def __enter__(self) -> RedisQueue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
