"""Replaying an identifier's messages: every stored copy, oldest first, merged."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from zevents.errors import DecodeError
from zevents.redis.archive import ArchivedMessage, ArchiveStore
from zevents.redis.jobs import Blocking, Job
from zevents.redis.keys import QueueKeys
from zevents.redis.message import BodyCodec
from zevents.redis.protocol.history import HistoryPlans, Stored
from zevents.redis.protocol.records import QueueShape

__all__ = ["HistoryEntry", "Until", "merge_payloads", "reading_history", "sending_order"]

#: What ``until`` may be: an ISO 8601 text, a ``datetime``, or Unix seconds.
Until = str | datetime | float


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One message of an identifier, as ``history`` lists it.

    Attributes:
        id: Its id (in the queue, or when it was archived).
        event: Its event name.
        payload: Its payload.
        enqueued_at: When it was first sent, in Unix seconds (Redis clock); a restored
            message keeps its original time. None when its body does not say.
        source: ``"queue"`` or ``"archive"``.
    """

    id: str
    event: str
    payload: Any
    enqueued_at: float | None
    source: str


def sending_order(message_id: str, fields: Mapping[str, Any]) -> tuple[str, float, int]:
    """A message's original id, and its place in the order of sending: when it was
    first sent (ms; a restored message keeps its original time; 0 when its body does
    not say) and the enqueue sequence in its id (``<ms>-<seq>``; 0 for other ids, so
    on the ``set`` driver messages sent in one millisecond have no order)."""
    origin = fields.get("original_id")
    origin = origin if isinstance(origin, str) else message_id
    at = fields.get("original_enqueued_at", fields.get("enqueued_at"))
    at = at if isinstance(at, (int, float)) and not isinstance(at, bool) else 0
    head, _, seq = origin.rpartition("-")
    return origin, at, int(seq) if head and seq.isdigit() else 0


def _entry(message_id: str, fields: dict[str, Any], source: str) -> tuple[Any, HistoryEntry]:
    """The entry of a message, with its original id and its place in the order."""
    origin, at, seq = sending_order(message_id, fields)
    event, payload = str(fields.get("event")), fields.get("payload")
    entry = HistoryEntry(message_id, event, payload, at / 1000.0 if at else None, source)
    return (origin, (at, seq)), entry


def reading_history(
    name: str,
    keys: QueueKeys,
    shape: QueueShape,
    codec: BodyCodec,
    identifier: str,
    limit_ms: float | None,
    store: ArchiveStore,
) -> Job[list[HistoryEntry]]:
    """The job that reads the messages of ``identifier`` in the queue and in ``store``:
    oldest first, each once (by original id), those sent after ``limit_ms`` (Unix ms;
    None: none) left out."""
    plans = HistoryPlans(keys, shape)
    stored: list[Stored] = yield plans.with_identifier(identifier, codec)
    found = [_entry(s.id, s.fields, "queue") for s in stored]
    records: list[ArchivedMessage] = yield Blocking(partial(store.read, name))
    for record in records:
        if record.identifier != identifier:
            continue
        try:
            fields = codec.decode(orjson.dumps(record.body))
        except DecodeError:
            continue
        found.append(_entry(record.id, fields, "archive"))
    seen: set[str] = set()
    out: list[tuple[Any, HistoryEntry]] = []
    for (origin, order), entry in found:
        if origin in seen or (limit_ms is not None and order[0] > limit_ms):
            continue
        seen.add(origin)
        out.append((order, entry))
    out.sort(key=lambda pair: pair[0])
    return [entry for _, entry in out]


def merge_payloads(entries: Sequence[HistoryEntry]) -> Any:
    """The state the payloads make, oldest first: a dict payload is merged key by key
    into the state (later wins); any other payload replaces it. ``{}`` for none."""
    state: Any = {}
    for entry in entries:
        if isinstance(entry.payload, dict):
            state = {**state, **entry.payload} if isinstance(state, dict) else dict(entry.payload)
        else:
            state = entry.payload
    return state
