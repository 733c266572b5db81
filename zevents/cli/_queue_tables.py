"""What ``zevents queue list``, ``failed`` and ``finished`` print: a table for a terminal,
JSON lines for a program, the same rows either way. Everything here only reads Redis."""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from zevents._signals import installed_signal_handlers
from zevents.cli._output import print_json
from zevents.cli._tables import age_text, is_terminal, local_time, make_table, print_table, watch

if TYPE_CHECKING:
    from rich.table import Table

    from zevents.redis import FailedMessage, WorkerRegistry

__all__ = [
    "COMPACT_FIELDS",
    "FAILED_FIELDS",
    "failed_record",
    "output_option",
    "overview",
    "print_failed",
    "print_finished",
    "show_overview",
    "wants_json",
]

#: ``--json/--table``: how inspection prints (by default: a table only on a terminal).
output_option = click.option(
    "--json/--table",
    "as_json",
    default=None,
    help="Print JSON lines, or a table. [default: a table on a terminal, else JSON lines]",
)


def wants_json(as_json: bool | None) -> bool:
    """JSON lines as asked, else unless stdout is a terminal."""
    return not is_terminal() if as_json is None else as_json


# --- every queue: queue list ------------------------------------------------------


def overview(registry: WorkerRegistry) -> list[dict[str, Any]]:
    """One entry per queue under the registry's prefix, by name: its counts, the age in
    seconds of its oldest ready message (Redis clock) and how many live workers serve it.

    Raises:
        QueueUnavailable: Redis cannot be reached.
    """
    from zevents.errors import QueueNotFound
    from zevents.redis import RedisQueue

    records = registry.queues()
    live = registry.workers(prune=False)
    now = registry.time_ms() / 1000.0
    rows = []
    for record in records:
        target = RedisQueue(
            record.name, registry.url, client=registry.client, prefix=registry.prefix
        )
        try:
            stats = target.stats()
        except QueueNotFound:  # removed since it was listed
            continue
        oldest = stats["oldest_ready_at"]
        rows.append(
            {
                "name": record.name,
                "driver": record.driver,
                "ready": stats["ready"],
                "delayed": stats["delayed"],
                "processing": stats["processing"],
                "serial": stats["serial"],
                "failed": stats["failed"],
                "oldest_ready_age": None if oldest is None else round(max(0.0, now - oldest), 3),
                "workers": sum(1 for w in live if record.name in (w.get("queues") or ())),
            }
        )
    return rows


_LIST_COLUMNS = ("queue", "driver", "ready", "delayed", "processing", "failed", "oldest", "workers")


def _ready_text(ready: dict[int, int]) -> str:
    """The ready count of a one-level queue, else ``level:count`` per level."""
    if len(ready) == 1:
        return str(next(iter(ready.values())))
    return " ".join(f"{level}:{count}" for level, count in ready.items())


def _overview_table(registry: WorkerRegistry, caption: str | None = None) -> Table:
    rows = [
        (
            row["name"],
            row["driver"],
            _ready_text(row["ready"]),
            str(row["delayed"]),
            str(row["processing"]),
            str(row["failed"]),
            age_text(row["oldest_ready_age"]),
            str(row["workers"]),
        )
        for row in overview(registry)
    ]
    return make_table(
        _LIST_COLUMNS, rows, numeric=_LIST_COLUMNS[2:], wrap=("queue", "ready"), caption=caption
    )


def show_overview(registry: WorkerRegistry, *, as_json: bool, interval: float | None) -> None:
    """Print the overview once, or every ``interval`` seconds until Ctrl-C or SIGTERM:
    redrawn in place on a terminal (a table), printed again otherwise."""
    if interval is None:
        _print_overview(registry, as_json=as_json)
        return
    # SIGTERM ends a watch as Ctrl-C does: status 0, and a normal exit (so an embedded
    # Redis this was the last user of is shut down, its data saved).
    with installed_signal_handlers({signal.SIGTERM: _interrupt}):
        if not as_json and is_terminal():
            caption = f"every {interval:g} s; Ctrl-C to stop"
            watch(lambda: _overview_table(registry, caption), interval)
            return
        try:
            while True:
                _print_overview(registry, as_json=as_json)
                time.sleep(interval)
        except KeyboardInterrupt:
            return  # how a watch is stopped, not a failure


def _print_overview(registry: WorkerRegistry, *, as_json: bool) -> None:
    if as_json:
        for row in overview(registry):
            print_json(row)
    else:
        print_table(_overview_table(registry))


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# --- one queue's failed store: queue failed --------------------------------------

#: The fields of a failed message's JSON line, in order.
FAILED_FIELDS = ("id", "event", "payload", "error", "receiver", "attempts", "failed_at", "reason")
#: The fields ``--compact`` keeps.
COMPACT_FIELDS = ("id", "event", "error")
_FAILED_COLUMNS = ("id", "event", "receiver", "error", "attempts", "failed at")
# On a narrow terminal these wrap (the id and the count never do).
_FAILED_WRAP = ("event", "receiver", "error", "failed at")


def failed_record(entry: FailedMessage) -> dict[str, Any]:
    """A failed message as its JSON line holds it."""
    return {field: getattr(entry, field) for field in FAILED_FIELDS}


def _failed_row(entry: FailedMessage, compact: bool) -> tuple[str, ...]:
    event = entry.event or "-"
    if compact:
        return (entry.id, event, entry.error)
    failed_at = local_time(entry.failed_at)
    return (entry.id, event, entry.receiver or "-", entry.error, str(entry.attempts), failed_at)


def print_failed(entries: Sequence[FailedMessage], *, as_json: bool, compact: bool) -> None:
    """Print failed messages: one JSON line each, or one table."""
    if as_json:
        for entry in entries:
            record = failed_record(entry)
            print_json({k: record[k] for k in COMPACT_FIELDS} if compact else record)
        return
    columns = COMPACT_FIELDS if compact else _FAILED_COLUMNS
    rows = [_failed_row(entry, compact) for entry in entries]
    print_table(make_table(columns, rows, numeric=("attempts",), wrap=_FAILED_WRAP))


# --- one queue's finished records: queue finished ----------------------------------

_FINISHED_COLUMNS = (
    "id",
    "event",
    "identifier",
    "attempts",
    "duration",
    "memory (MiB)",
    "pid",
    "finished at",
)
_MIB = 1024 * 1024


def _finished_row(record: dict[str, Any]) -> tuple[str, ...]:
    before, after = record["memory_before"] / _MIB, record["memory_after"] / _MIB
    return (
        record["id"],
        record["event"],
        record["identifier"] or "-",
        str(record["attempts"]),
        f"{record['duration']:.3f} s",
        f"{before:.1f} → {after:.1f}",
        str(record["pid"]),
        local_time(record["finished_at"]),
    )


def print_finished(records: Sequence[dict[str, Any]], *, as_json: bool) -> None:
    """Print finished records (``FinishedRecord`` as dicts): one JSON line each, or one
    table."""
    if as_json:
        for record in records:
            print_json(record)
        return
    rows = [_finished_row(record) for record in records]
    numeric = ("attempts", "duration", "memory (MiB)", "pid")
    print_table(make_table(_FINISHED_COLUMNS, rows, numeric=numeric, wrap=("event", "identifier")))
