"""Purging and archiving old messages, and restoring archived ones.

Archiving writes a page of messages to the store first (flushed and fsynced) and deletes
them from Redis after, so a crash in between leaves a message both archived and queued
(the next archive run archives it again) but never loses one; ``restore`` puts one
message back per original id, however many copies the archive holds. Messages are found
and removed by the sans-I/O plans of ``zevents.redis.protocol.history``; each run is a
job (``zevents.redis.jobs``), run by the sync and the asyncio queue alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import orjson

from zevents.errors import DecodeError
from zevents.redis.archive import ArchivedMessage, ArchiveStore
from zevents.redis.durations import parse_duration
from zevents.redis.jobs import OPENING, Blocking, Job, Write
from zevents.redis.keys import QueueKeys
from zevents.redis.message import BodyCodec, content_id
from zevents.redis.protocol import Driver, Plan, SendItem
from zevents.redis.protocol.history import PAGE, Candidate, Dropped, HistoryPlans
from zevents.redis.protocol.records import QueueShape
from zevents.redis.replay import sending_order

logger = logging.getLogger(__name__)

__all__ = ["PurgeResult", "Removal", "restoring"]


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What ``purge`` or ``archive`` removed from a queue.

    Attributes:
        acknowledged: Messages removed that every consumer group had acknowledged
            (stream driver).
        unacknowledged: Messages removed that no consumer had finished (ready,
            delayed, or pending in some group); only with ``force=True``.
        keeps_acknowledged: Whether the driver keeps acknowledged messages at all. Only
            the stream driver does; list, sorted-set and set delete a message when it
            is acknowledged, so without ``force`` they have nothing to remove.
    """

    acknowledged: int
    unacknowledged: int
    keeps_acknowledged: bool

    @property
    def removed(self) -> int:
        """Every message removed."""
        return self.acknowledged + self.unacknowledged


class _Archiving:
    """Writes a page to the store before its messages are deleted, and takes back the
    records of those the deletion kept (a worker took them in between)."""

    def __init__(self, store: ArchiveStore, queue: str, now_ms: int) -> None:
        self.store, self.queue, self.at = store, queue, now_ms / 1000.0
        self.written: dict[str, ArchivedMessage] = {}

    def write(self, page: list[Candidate]) -> list[Candidate]:
        """Archive ``page``; returns the candidates archived (a body that is not a JSON
        object cannot be, and stays in the queue)."""
        self.written = {}
        for candidate in page:
            try:
                body = orjson.loads(candidate.body)
            except orjson.JSONDecodeError:
                body = None
            if not isinstance(body, dict):
                logger.warning(
                    "%s: %s is not a JSON object; not archived", self.queue, candidate.id
                )
                continue
            self.written[candidate.ref] = ArchivedMessage(
                self.queue,
                candidate.id,
                body,
                candidate.location,
                self.at,
                candidate.unacknowledged,
            )
        if self.written:
            self.store.append(list(self.written.values()))
        return [c for c in page if c.ref in self.written]

    def take_back(self, kept: set[str]) -> None:
        """Remove the records of the candidates whose deletion was refused."""
        records = [self.written[ref] for ref in kept if ref in self.written]
        if records:
            self.store.remove(self.queue, records)


class Removal:
    """One purge (no ``store``) or archive run over a queue, page by page, as a job
    (``zevents.redis.jobs``): ``Removal(...).job(...)``. Making one does no I/O.

    Args:
        older_than: A duration or seconds: the messages sent at or before now minus it.
        force: Also remove messages no consumer has finished.
        store: The archive to move them into (None: purge, delete them).

    Raises:
        ConfigError: ``older_than`` is not a duration.
    """

    def __init__(self, older_than: str | float, force: bool, store: ArchiveStore | None) -> None:
        self.seconds = parse_duration(older_than, option="older_than")
        self.force, self.store = force, store
        self.cutoff = 0
        self.archiving: _Archiving | None = None

    def action(self, name: str) -> str:
        """What the run is, for error messages."""
        return f"{'purge' if self.store is None else 'archive'} {name!r}"

    def job(self, name: str, keys: QueueKeys, shape: QueueShape) -> Job[PurgeResult]:
        """The run over the queue ``name``: what it removed."""
        self.plans = HistoryPlans(keys, shape)
        now = yield self.plans.now_ms()
        # Sent at or before now - older_than: the scripts take what is before the cutoff.
        self.cutoff = now - int(self.seconds * 1000) + 1
        if self.store is not None:
            self.archiving = _Archiving(self.store, name, now)
        acknowledged = unacknowledged = 0
        if self.plans.is_stream and not self.force and self.archiving is None:
            acknowledged = yield self.plans.trim(self.cutoff)
        elif self.plans.is_stream:
            for priority in keys.priorities:
                done, forced = yield from self._entries(priority)
                acknowledged, unacknowledged = acknowledged + done, unacknowledged + forced
        if self.force:
            unacknowledged += yield from self._stored()
        return PurgeResult(acknowledged, unacknowledged, keeps_acknowledged=self.plans.is_stream)

    def _sweep(
        self, page: list[Candidate], drop: Callable[[list[Candidate]], Plan[Dropped]]
    ) -> Job[Dropped]:
        """Archive a page (when archiving), delete it, take back the records of what
        the deletion kept."""
        archiving = self.archiving
        if archiving is not None and page:
            page = yield Blocking(partial(archiving.write, page))
        dropped: Dropped = yield drop(page)
        if archiving is not None and dropped.kept:
            yield Blocking(partial(archiving.take_back, dropped.kept))
        return dropped

    def _entries(self, priority: int) -> Job[tuple[int, int]]:
        """The old entries of one priority's stream: (acknowledged, unacknowledged)."""
        bodies, start = self.archiving is not None, "-"
        done = forced = 0
        while True:
            plan = self.plans.entries(priority, start, self.cutoff, self.force, bodies)
            page = yield plan
            dropped = yield from self._sweep(
                page, lambda p: self.plans.drop_entries(priority, p, self.force)
            )
            done, forced = done + dropped.acknowledged, forced + dropped.unacknowledged
            if len(page) < PAGE:
                return done, forced
            start = "(" + page[-1].ref

    def _stored(self) -> Job[int]:
        """The old ready and delayed messages of the msgs hash; how many were deleted."""
        cursor, deleted, bodies = "0", 0, self.archiving is not None
        while True:
            cursor, page = yield self.plans.stored(cursor, self.cutoff, bodies)
            deleted += (yield from self._sweep(page, self.plans.drop_stored)).unacknowledged
            if cursor == "0":
                return deleted


def _restored(shape: QueueShape, codec: BodyCodec, record: ArchivedMessage) -> SendItem | None:
    """The message that puts ``record`` back: its body with ``original_id`` (and its
    first send time as ``original_enqueued_at``), at its priority if the queue has it."""
    body = dict(record.body)
    sent_at = body.pop("enqueued_at", None)
    body.setdefault("original_enqueued_at", sent_at)
    body["original_id"] = record.id
    if body.get("original_enqueued_at") is None:
        del body["original_enqueued_at"]
    if body.get("priority") not in shape.priorities:
        body["priority"] = shape.default_priority
    encoded = orjson.dumps(body)
    try:
        fields = codec.decode(encoded)
    except DecodeError as exc:
        logger.warning("archived %s is not a message (%s); left in the archive", record.id, exc)
        return None
    identifier, serial = fields.get("identifier"), fields.get("serial_group")
    identifier = identifier if isinstance(identifier, str) else None
    serial = serial if isinstance(serial, str) and serial else None
    payload = fields.get("payload")
    message_id = content_id(fields["event"], payload, identifier) if shape.driver == "set" else ""
    return SendItem(
        encoded, body["priority"], message_id, identifier=identifier, serial_group=serial
    )


def restoring(
    name: str, codec: BodyCodec, ids: Iterable[str] | None, store: ArchiveStore
) -> Job[dict[str, str]]:
    """The job that puts the archived messages of ``ids`` (None: all) back in their
    first order, one per original id, then removes them from ``store``: original id ->
    new id. The queue is opened (and prepared, to write) only when there is one to put
    back: with none, Redis is not asked at all."""
    wanted = None if ids is None else set(ids)
    records: list[ArchivedMessage] = yield Blocking(partial(store.read, name))
    chosen = [r for r in records if wanted is None or r.id in wanted]
    if not chosen:
        return {}
    opened: tuple[Driver, QueueShape] = yield OPENING
    driver, shape = opened
    chosen.sort(key=lambda r: sending_order(r.id, r.body)[1:])  # back in their first order
    first: dict[str, SendItem] = {}
    for record in chosen:
        if record.id not in first:
            item = _restored(shape, codec, record)
            if item is not None:
                first[record.id] = item
    if not first:
        return {}
    new_ids = yield Write(driver.send_many(list(first.values())))
    yield Blocking(partial(store.remove, name, [r for r in chosen if r.id in first]))
    return dict(zip(first, new_ids, strict=True))
