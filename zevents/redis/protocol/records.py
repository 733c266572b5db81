"""What each queue is, recorded in Redis when it is first used: its driver and levels.

A queue's record lets an operator (or a second program) open it by name alone, and
turns a wrong ``driver`` or ``priorities`` into an error naming the real ones instead of
a second set of keys. Sans-I/O: every function returns a plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zevents.errors import ConfigError, QueueError, QueueNotFound
from zevents.redis.defaults import DRIVERS
from zevents.redis.keys import QueueKeys, meta_key, queues_key
from zevents.redis.protocol.base import as_str
from zevents.redis.protocol.steps import Batch, Call, Command, Plan

__all__ = [
    "QueueRecord",
    "QueueShape",
    "check_record",
    "has_data",
    "not_found",
    "read_record",
    "read_records",
    "record",
    "settle_shape",
]


@dataclass(frozen=True, slots=True)
class QueueRecord:
    """What a queue was created as.

    Attributes:
        name: The queue name.
        driver: Its driver.
        priorities: Its priority levels, highest first.
        default_priority: The level of messages sent without one.
        created_at: When it was first used, in Unix seconds (Redis clock).
    """

    name: str
    driver: str
    priorities: tuple[int, ...]
    default_priority: int
    created_at: float


def _parse(name: str, fields: Sequence[Any]) -> QueueRecord | None:
    driver, levels, default, created = (None if f is None else as_str(f) for f in fields)
    if driver is None or levels is None:
        return None
    priorities = tuple(int(p) for p in levels.split(",") if p)
    return QueueRecord(
        name,
        driver,
        priorities,
        int(default) if default else priorities[-1],
        int(created or 0) / 1000.0,
    )


_FIELDS = ("driver", "priorities", "default_priority", "created_at")


def read_record(name: str, prefix: str) -> Plan[QueueRecord | None]:
    """The record of queue ``name``, or None if it was never used."""
    fields = yield Command("hmget", (meta_key(name, prefix), list(_FIELDS)))
    return _parse(name, fields)


def record(keys: QueueKeys, driver: str, default_priority: int) -> Plan[QueueRecord]:
    """Record the queue (a record already there is kept) and return what is recorded."""
    levels = ",".join(str(p) for p in keys.priorities)
    call = Call("queue_meta.lua", [keys.key("meta")], [driver, levels, default_priority])
    # The set of names is another key (another cluster slot): a command of its own.
    replies = yield Batch([call, Command("sadd", (queues_key(keys.prefix), keys.name))])
    found = _parse(keys.name, replies[0])
    if found is None:
        raise QueueError(f"Redis left no record of queue {keys.name!r}")
    return found


def has_data(keys: QueueKeys) -> Plan[bool]:
    """Whether any key of the queue holds a message (a queue written by another program
    has data but no record)."""
    found = yield Command("exists", tuple(keys.data_keys()))
    return int(found) > 0


def not_found(name: str, prefix: str) -> Plan[QueueNotFound]:
    """The error for queue ``name`` that was never used, naming the ones that were."""
    known = [r.name for r in (yield from read_records(prefix))]
    return QueueNotFound(
        f"no queue {name!r} under prefix {prefix!r}; "
        + (f"the queues are: {', '.join(known)}" if known else "there is none yet"),
        name=name,
        known=known,
    )


def read_records(prefix: str) -> Plan[list[QueueRecord]]:
    """The records of every queue under ``prefix``, by name."""
    names = sorted(as_str(n) for n in (yield Command("smembers", (queues_key(prefix),))))
    replies = yield Batch([Command("hmget", (meta_key(n, prefix), list(_FIELDS))) for n in names])
    found = (_parse(n, fields) for n, fields in zip(names, replies, strict=True))
    return [r for r in found if r is not None]


@dataclass(frozen=True, slots=True)
class QueueShape:
    """What a queue object works with: its driver, levels and default priority."""

    driver: str
    priorities: tuple[int, ...]
    default_priority: int


def _csv(levels: Iterable[int]) -> str:
    return ",".join(str(p) for p in levels)


def settle_shape(
    name: str,
    recorded: QueueRecord | None,
    driver: str | None,
    priorities: Iterable[int] | None,
    default: int | None,
) -> QueueShape:
    """The shape to open queue ``name`` with: what was asked, checked against what the
    queue was created as, and what is recorded where nothing was asked.

    Raises:
        ConfigError: An unknown driver, a driver or levels other than the recorded
            ones (``option`` names which), or a default priority not among the levels.
    """
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
    return QueueShape(driver or "list", levels, default)


def check_record(found: QueueRecord, shape: QueueShape) -> None:
    """``found`` (just recorded) matches ``shape``.

    Raises:
        ConfigError: Another process created the queue otherwise in the meantime.
    """
    if (found.driver, found.priorities) != (shape.driver, shape.priorities):
        raise ConfigError(
            f"queue {found.name!r} was just created elsewhere as a {found.driver} queue "
            f"(priorities {_csv(found.priorities)}); open it again",
            option="driver",
        )
