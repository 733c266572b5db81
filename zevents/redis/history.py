"""A queue's history: the methods ``RedisQueue`` inherits to purge and archive old
messages, restore archived ones, replay an identifier's messages, and list and clear
the records of finished messages.

They run the jobs of ``zevents.redis.purge`` and ``zevents.redis.replay``
(``zevents.redis.jobs``; the asyncio queue runs the same ones), made of the sans-I/O
plans of ``zevents.redis.protocol.history``, and the plans of ``protocol.finished``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from zevents.errors import ConfigError
from zevents.redis._parts import QueueParts
from zevents.redis.archive import ArchiveStore, JsonLinesArchive
from zevents.redis.durations import parse_duration, until_ms
from zevents.redis.jobs import Job, run_job
from zevents.redis.protocol.finished import FinishedRecord, clear_finished, list_finished
from zevents.redis.protocol.records import not_found
from zevents.redis.purge import PurgeResult, Removal, restoring
from zevents.redis.replay import HistoryEntry, Until, merge_payloads, reading_history

__all__ = ["QueueHistory", "keep_finished_seconds", "older_than_ms"]

T = TypeVar("T")


def keep_finished_seconds(value: str | float | None) -> float | None:
    """``keep_finished`` in seconds (None keeps no records).

    Raises:
        ConfigError: Not a duration, or not longer than 0 (``option`` is
            ``"keep_finished"``).
    """
    if value is None:
        return None
    seconds = parse_duration(value, option="keep_finished")
    if seconds < 0.001:
        raise ConfigError(
            f"keep_finished must be longer than 0, not {value!r}", option="keep_finished"
        )
    return seconds


def older_than_ms(value: str | float | None) -> int | None:
    """``clear_finished``'s ``older_than`` in milliseconds (None: every record).

    Raises:
        ConfigError: Not a duration (``option`` is ``"older_than"``).
    """
    if value is None:
        return None
    return int(parse_duration(value, option="older_than") * 1000)


# --- the methods of RedisQueue ------------------------------------------------------


class QueueHistory:
    """The history methods of ``RedisQueue``."""

    def purge(self: QueueParts, older_than: str | float, *, force: bool = False) -> PurgeResult:
        """Delete messages older than ``older_than`` that every consumer group has
        acknowledged; with ``force``, unacknowledged ones too (ready, delayed, pending).

        Age is the time since a message was sent (``enqueued_at``); on the stream
        driver, the time since its entry was added (a retry is a new entry). Only the
        stream driver keeps acknowledged messages; on the others, without ``force``,
        nothing is deleted and the result says so (``keeps_acknowledged``).

        Args:
            older_than: A duration (``"2 days"``, ``"36h"``) or seconds.
            force: Also delete messages no consumer has finished.

        Raises:
            ConfigError: ``older_than`` is not a duration.
            QueueNotFound: No queue of this name was ever used.
        """
        return _remove(self, Removal(older_than, force, None))

    def archive(
        self: QueueParts,
        older_than: str | float,
        *,
        force: bool = False,
        store: ArchiveStore | None = None,
    ) -> PurgeResult:
        """Move the messages ``purge`` would delete into ``store`` (default: a
        ``JsonLinesArchive`` under the data directory): written there, flushed and
        fsynced, before they are deleted from Redis.

        Raises:
            ConfigError: ``older_than`` is not a duration.
            QueueNotFound: No queue of this name was ever used.
            QueueError: The store could not be written (nothing was deleted).
        """
        return _remove(self, Removal(older_than, force, store or JsonLinesArchive()))

    def restore(
        self: QueueParts, ids: Iterable[str] | None = None, *, store: ArchiveStore | None = None
    ) -> dict[str, str]:
        """Put archived messages back as new messages (due now) and remove them from
        the archive. Each new body has ``original_id``, the id it had when archived.

        Args:
            ids: The archived messages' ids; None: every message of this queue.
            store: The archive (default: the ``JsonLinesArchive`` ``archive`` uses).

        Returns:
            Original id -> new id, for each message put back (one per original id).
        """
        job = restoring(self.name, self.codec, ids, store or JsonLinesArchive())
        return _run(self, job, f"restore to {self.name!r}")

    def history(
        self: QueueParts,
        identifier: str,
        *,
        until: Until | None = None,
        store: ArchiveStore | None = None,
    ) -> list[HistoryEntry]:
        """Every message sent with ``identifier`` that is still stored (in the queue:
        ready, delayed, processing, held or failed, and stream entries; and in the
        archive), oldest first, each once.

        Args:
            identifier: The identifier.
            until: Only those sent at or before it: a ``datetime``, Unix seconds, or an
                ISO 8601 text (see ``zevents.redis.durations.parse_until``).
            store: The archive to read too (default: the ``JsonLinesArchive``).
        """
        return _history(self, identifier, until, store)

    def replay(
        self: QueueParts,
        identifier: str,
        *,
        until: Until | None = None,
        store: ArchiveStore | None = None,
    ) -> Any:
        """The state the payloads of ``identifier``'s messages make, oldest first (see
        ``history`` and ``merge_payloads``): usually a dict, ``{}`` for none."""
        return merge_payloads(_history(self, identifier, until, store))

    def finished(self: QueueParts, limit: int | None = None) -> list[FinishedRecord]:
        """The records of finished messages (``keep_finished``), newest last; the
        ``limit`` newest when given."""
        plan = list_finished(self.driver.keys.key("finished"), limit)
        return self.runner.run(plan, f"finished of {self.name!r}")

    def clear_finished(self: QueueParts, older_than: str | float | None = None) -> int:
        """Delete the finished records (those older than ``older_than`` when given);
        returns how many."""
        plan = clear_finished(self.driver.keys.key("finished"), older_than_ms(older_than))
        return self.runner.run(plan, f"clear finished of {self.name!r}")


def _run(queue: QueueParts, job: Job[T], action: str) -> T:
    """Run a history job on ``queue`` (its writes prepared and replicated as sends are)."""
    return run_job(
        job,
        lambda plan: queue.runner.run(plan, action),
        lambda plan: queue._write(plan, action),
        lambda: (queue.driver, queue.shape),
    )


def _remove(queue: QueueParts, removal: Removal) -> PurgeResult:
    if not queue.exists():
        raise queue.runner.run(not_found(queue.name, queue.driver.keys.prefix), "list queues")
    job = removal.job(queue.name, queue.driver.keys, queue.shape)
    return _run(queue, job, removal.action(queue.name))


def _history(
    queue: QueueParts, identifier: str, until: Until | None, store: ArchiveStore | None
) -> list[HistoryEntry]:
    limit = None if until is None else until_ms(until)  # a bad moment fails before any I/O
    keys, shape, codec = queue.driver.keys, queue.shape, queue.codec
    job = reading_history(
        queue.name, keys, shape, codec, identifier, limit, store or JsonLinesArchive()
    )
    return _run(queue, job, f"history of {queue.name!r}")
