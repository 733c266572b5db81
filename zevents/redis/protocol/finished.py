"""Finished records, sans-I/O: what a worker records of each message it finished, when
its queue keeps them (``RedisQueue(..., keep_finished="14d")``).

A record is a JSON object in the queue's sorted set ``{name}:finished``, scored by its
finish time; the acknowledging script writes it (adding ``finished_at``, and ``group``
on streams) and trims records older than ``keep_finished`` in the same call.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import orjson

from zevents.redis.message import Message
from zevents.redis.protocol.steps import Command, Plan

logger = logging.getLogger(__name__)

__all__ = ["FinishedRecord", "clear_finished", "encode_finished", "list_finished"]


@dataclass(frozen=True, slots=True)
class FinishedRecord:
    """What a worker recorded of one finished message.

    Attributes:
        id: The message id.
        event: Its event name.
        identifier: The identifier it was sent with, if any.
        attempts: The attempt that finished it (1: the first).
        pid: The worker's process id.
        worker: The worker's id (``host:pid:<random>``).
        duration: Seconds its receivers took.
        memory_before: The worker's resident memory before the receivers ran (bytes).
        memory_after: The same after them.
        finished_at: When it was acknowledged, in Unix seconds (Redis clock).
        group: The stream consumer group that finished it (stream driver).
    """

    id: str
    event: str
    identifier: str | None
    attempts: int
    pid: int
    worker: str
    duration: float
    memory_before: int
    memory_after: int
    finished_at: float
    group: str | None = None


def encode_finished(
    message: Message, worker: str, duration: float, memory_before: int, memory_after: int
) -> bytes:
    """The record of ``message`` as the acknowledging script stores it (it adds
    ``finished_at``)."""
    return orjson.dumps(
        {
            "id": message.id,
            "event": message.event,
            "identifier": message.identifier,
            "attempts": message.attempt,
            "pid": os.getpid(),
            "worker": worker,
            "duration": duration,
            "memory_before": memory_before,
            "memory_after": memory_after,
        }
    )


def _parse(raw: Any) -> FinishedRecord | None:
    try:
        data = orjson.loads(raw)
        return FinishedRecord(
            id=str(data["id"]),
            event=str(data["event"]),
            identifier=data.get("identifier"),
            attempts=int(data.get("attempts") or 0),
            pid=int(data.get("pid") or 0),
            worker=str(data.get("worker") or ""),
            duration=float(data.get("duration") or 0.0),
            memory_before=int(data.get("memory_before") or 0),
            memory_after=int(data.get("memory_after") or 0),
            finished_at=int(data.get("finished_at") or 0) / 1000.0,
            group=data.get("group"),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        logger.warning("skipped a finished record that is not one (%s): %r", exc, raw[:200])
        return None


def list_finished(key: str, limit: int | None) -> Plan[list[FinishedRecord]]:
    """The records in ``key``, newest last; the ``limit`` newest when given."""
    start = 0 if limit is None else -limit
    if limit is not None and limit <= 0:
        return []
    raws = yield Command("zrange", (key, start, -1))
    return [record for record in map(_parse, raws) if record is not None]


def clear_finished(key: str, older_than_ms: int | None) -> Plan[int]:
    """Delete the records in ``key`` (those finished more than ``older_than_ms`` ago,
    Redis clock, when given); returns how many."""
    if older_than_ms is None:
        return int((yield Command("zremrangebyrank", (key, 0, -1))))
    seconds, micros = yield Command("time")
    cutoff = int(seconds) * 1000 + int(micros) // 1000 - older_than_ms
    return int((yield Command("zremrangebyscore", (key, "-inf", f"({cutoff}"))))
