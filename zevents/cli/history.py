"""``zevents queue purge|archive|restore|replay|finished|clear-finished``: a queue's history.

The commands of ``RedisQueue``'s history methods (``zevents.redis.history``); app.py adds
them to the ``queue`` group. They act on the whole queue, every consumer group's
entries alike, so they take the queue options less ``--group`` (a group named to
``RedisQueue`` is created: a write, and one that would hold back what purge may
delete). ``replay`` and ``finished`` only read.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from zevents.cli._durations import Duration, Moment
from zevents.cli._output import print_json
from zevents.cli._queue_tables import output_option, print_finished, wants_json
from zevents.cli._queues import whole_queue_options
from zevents.cli.queue import on_named_queue
from zevents.redis.embedded import DEFAULT_HOME, HOME_ENV

if TYPE_CHECKING:
    from zevents.redis import JsonLinesArchive, PurgeResult, RedisQueue

logger = logging.getLogger(__name__)

__all__ = ["HISTORY_COMMANDS", "archive", "clear_finished", "finished", "purge", "replay"]

_FORMS = "'90 min', '2 days', '1 week', '36h' (a bare number is seconds)"

_older_than = click.option(
    "--older-than",
    "older_than",
    type=Duration(),
    required=True,
    metavar="DURATION",
    help=f"Only messages sent at least this long ago: {_FORMS}.",
)
_force = click.option(
    "--force",
    is_flag=True,
    help="Also messages no worker has finished: ready, delayed, or pending in a stream "
    "group (a WARNING says how many).",
)
_archive = click.option(
    "--archive",
    "archive_path",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help=f"The archive: a directory of <queue>.jsonl files, or one .jsonl file. "
    f"[default: archive/ in the data directory, ${HOME_ENV}, else ./{DEFAULT_HOME}]",
)


def _store(path: Path | None) -> JsonLinesArchive:
    """The JSON-lines archive at ``path`` (None: under the data directory)."""
    from zevents.redis import JsonLinesArchive

    return JsonLinesArchive(path)


def _report(target: RedisQueue, action: str, result: PurgeResult, force: bool) -> None:
    """Log what a purge or archive run removed that no worker had finished (a warning,
    with ``--force``), or why a queue had nothing to remove without it."""
    if force:
        logger.warning(
            "%s %d unacknowledged message(s) of %r (--force: no worker had finished them)",
            action,
            result.unacknowledged,
            target.name,
        )
    elif not result.keeps_acknowledged:
        logger.info(
            "a %s queue deletes a message once it is finished: nothing of %r to %s without --force",
            target.driver_name,
            target.name,
            "delete" if action == "deleted" else "archive",
        )


# --- purge, archive, restore --------------------------------------------------------


@click.command(
    epilog="""\b
Examples:
  zevents queue purge events --older-than '2 days'
  zevents queue purge orders --older-than 1w --force

\b
Prints how many messages were deleted. Without --force only messages every consumer
group acknowledged go: only stream queues keep those, so on list, sorted-set and set
queues it deletes nothing. DURATION: '90 min', '2 days', '1 week', '36h', ...
"""
)
@_older_than
@_force
@on_named_queue(must_exist=True, options=whole_queue_options)
def purge(target: RedisQueue, older_than: float, force: bool) -> None:
    """Delete old, finished messages of queue NAME; prints how many."""
    result = target.purge(older_than, force=force)
    _report(target, "deleted", result, force)
    click.echo(result.removed)


@click.command(
    epilog="""\b
Examples:
  zevents queue archive events --older-than '90 days'
  zevents queue archive orders --older-than 1w --force --archive /srv/archive

\b
Moves what `zevents queue purge` would delete into a JSON-lines archive (written and
fsynced before it is deleted from Redis) and prints how many messages it moved.
`zevents queue restore` puts them back; `zevents queue replay` reads them too.
"""
)
@_older_than
@_force
@_archive
@on_named_queue(must_exist=True, options=whole_queue_options)
def archive(target: RedisQueue, older_than: float, force: bool, archive_path: Path | None) -> None:
    """Move the old messages of queue NAME into an archive."""
    store = _store(archive_path)
    result = target.archive(older_than, force=force, store=store)
    _report(target, "archived", result, force)
    logger.info("archived %d message(s) of %r in %s", result.removed, target.name, store.path)
    click.echo(result.removed)


def _check_restore(everything: bool, ids: tuple[str, ...], **_options: Any) -> None:
    """``restore`` needs exactly one of ``--all`` and ``--id``, and no empty id.

    Raises:
        click.UsageError: Both, neither, or an empty id.
    """
    if everything and ids:
        raise click.UsageError("--all restores every archived message; drop --id")
    if not everything and not ids:
        raise click.UsageError("say which archived messages to restore: --all, or --id ID")
    if "" in ids:
        raise click.UsageError("--id must not be empty")


@click.command(
    epilog="""\b
Examples:
  zevents queue restore orders --all
  zevents queue restore orders --id 1767261600000-1 --id 1767261600000-2

\b
Prints one line per message put back: its original id -> its new id. Each new
message keeps the original id in its body (original_id). An --id the archive does
not hold is named on stderr, after the others are restored (exit status 1).
"""
)
@click.option("--all", "everything", is_flag=True, help="Every archived message of the queue.")
@click.option(
    "--id",
    "ids",
    multiple=True,
    metavar="ID",
    help="The archived message with this original id (repeatable).",
)
@_archive
@on_named_queue(must_exist=True, check=_check_restore, options=whole_queue_options)
def restore(
    target: RedisQueue, everything: bool, ids: tuple[str, ...], archive_path: Path | None
) -> None:
    """Put archived messages of queue NAME back as new messages."""
    store = _store(archive_path)
    restored = target.restore(None if everything else ids, store=store)
    for original, new in restored.items():
        click.echo(f"{original} -> {new}")
    missing = [i for i in dict.fromkeys(ids) if i not in restored]
    if missing:
        raise click.ClickException(
            f"not in the archive of {target.name!r} ({store.file_for(target.name)}): "
            + ", ".join(missing)
        )
    if not restored:
        logger.info("no archived message of %r in %s", target.name, store.path)


# --- replay -------------------------------------------------------------------------


@click.command(
    epilog="""\b
Examples:
  zevents queue replay orders --identifier order-7
  zevents queue replay orders --identifier order-7 --until 2026-01-31T18:00

\b
Prints one JSON object: the payloads of every message sent with ID that is still
stored, in the queue or in the archive, merged oldest first (a later key wins; a
payload that is not an object replaces the state); {} for none. DATETIME is ISO 8601
(2026-01-31 is the whole day; without a zone, local time). It only reads.
"""
)
@click.option(
    "--identifier", required=True, metavar="ID", help="The identifier the messages were sent with."
)
@click.option(
    "--until",
    type=Moment(),
    metavar="DATETIME",
    help="Only messages sent at or before this ISO 8601 date or date-time.",
)
@_archive
@on_named_queue(must_exist=True, options=whole_queue_options)
def replay(
    target: RedisQueue, identifier: str, until: datetime | None, archive_path: Path | None
) -> None:
    """Print an identifier's state in queue NAME, as one JSON object."""
    print_json(target.replay(identifier, until=until, store=_store(archive_path)))


# --- finished records ---------------------------------------------------------------


@click.command(
    epilog="""\b
Examples:
  zevents queue finished orders
  zevents queue finished orders --limit 20 --json | jq -c '{event, duration}'

\b
The records a worker keeps with --keep-finished (or RedisQueue(keep_finished=...)),
oldest first. On a terminal: a table (finished at: local time). On a pipe or a file:
one JSON line per record (id, event, identifier, attempts, pid, worker, duration,
memory_before, memory_after, finished_at, group). It only reads.
"""
)
@output_option
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Only the N newest records.")
@on_named_queue(must_exist=True, options=whole_queue_options)
def finished(target: RedisQueue, as_json: bool | None, limit: int | None) -> None:
    """List the records of the messages finished on queue NAME."""
    records = target.finished(limit)
    print_finished([dataclasses.asdict(r) for r in records], as_json=wants_json(as_json))


@click.command(
    "clear-finished",
    epilog="""\b
Examples:
  zevents queue clear-finished orders
  zevents queue clear-finished orders --older-than 14d
""",
)
@click.option(
    "--older-than",
    "older_than",
    type=Duration(),
    metavar="DURATION",
    help=f"Only records finished at least this long ago: {_FORMS}. [default: every record]",
)
@on_named_queue(must_exist=True, options=whole_queue_options)
def clear_finished(target: RedisQueue, older_than: float | None) -> None:
    """Delete the finished records of queue NAME.

    Prints how many.
    """
    click.echo(target.clear_finished(older_than))


#: The commands app.py adds to the ``queue`` group.
HISTORY_COMMANDS = (purge, archive, restore, replay, finished, clear_finished)
