"""Archive stores: where ``RedisQueue.archive`` moves old messages, and ``restore`` reads.

``ArchiveStore`` is the interface (append records durably, read them back by queue,
remove some); ``JsonLinesArchive`` is the default, one JSON object a line in a file per
queue under the data directory. Importable without redis-py.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from zevents.errors import QueueError
from zevents.redis.embedded import home_directory

logger = logging.getLogger(__name__)

__all__ = ["ArchiveStore", "ArchivedMessage", "JsonLinesArchive", "default_archive_directory"]

# How long a store waits for another process's lock on its file (seconds).
_LOCK_TIMEOUT = 30.0


@dataclass(frozen=True)
class ArchivedMessage:
    """One message moved out of a queue into an archive.

    Attributes:
        queue: The queue it came from.
        id: Its id in that queue (``restore(ids=...)`` takes these).
        body: Its stored body as a JSON object (``event``, ``payload``, ``priority``,
            ``enqueued_at``, ...), exactly as it was in Redis.
        location: Where it was: ``ready:<priority>``, ``delayed`` (``delayed:<group>``
            for a stream group's retry) or ``stream:<priority>:<entry id>``.
        archived_at: When it was archived, in Unix seconds (Redis clock).
        unacknowledged: Some consumer had not finished it (archived with ``force``).
    """

    queue: str
    id: str
    body: Mapping[str, Any]
    location: str
    archived_at: float
    unacknowledged: bool = False

    @property
    def event(self) -> str | None:
        """The event name, if the body has one."""
        event = self.body.get("event")
        return event if isinstance(event, str) else None

    @property
    def identifier(self) -> str | None:
        """The identifier it was sent with, if any."""
        value = self.body.get("identifier")
        return value if isinstance(value, str) else None

    @property
    def enqueued_at(self) -> float | None:
        """When it was sent, in Unix seconds (Redis clock), if the body says."""
        value = self.body.get("enqueued_at")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return value / 1000.0

    def to_json(self) -> bytes:
        """The record as one JSON line (without the newline)."""
        return orjson.dumps(
            {
                "queue": self.queue,
                "id": self.id,
                "location": self.location,
                "archived_at": self.archived_at,
                "unacknowledged": self.unacknowledged,
                "body": self.body,
            }
        )

    @classmethod
    def from_json(cls, line: bytes) -> ArchivedMessage:
        """The record of one JSON line.

        Raises:
            ValueError: The line is not a record.
        """
        data = orjson.loads(line)
        if not isinstance(data, dict) or not isinstance(data.get("body"), dict):
            raise ValueError("not an archived message")
        return cls(
            queue=str(data["queue"]),
            id=str(data["id"]),
            body=data["body"],
            location=str(data.get("location", "")),
            archived_at=float(data.get("archived_at") or 0.0),
            unacknowledged=bool(data.get("unacknowledged")),
        )

    def same_as(self, other: ArchivedMessage) -> bool:
        """Whether both are records of one archived copy (a copy written twice after a
        crash included)."""
        return (self.queue, self.id, self.location) == (other.queue, other.id, other.location)


class ArchiveStore(Protocol):
    """Where archived messages are kept. An implementation must make ``append``
    durable: when it returns, the records survive a crash (the queue deletes the
    messages from Redis only then)."""

    def append(self, records: Sequence[ArchivedMessage]) -> None:
        """Store ``records`` durably, after those already stored."""
        ...

    def read(self, queue: str) -> list[ArchivedMessage]:
        """Every record of queue ``queue``, in the order they were appended."""
        ...

    def remove(self, queue: str, records: Iterable[ArchivedMessage]) -> int:
        """Remove the records of queue ``queue`` that are copies of ``records`` (see
        ``ArchivedMessage.same_as``); returns how many were removed."""
        ...


def default_archive_directory() -> Path:
    """The default store's directory: ``archive`` in the data directory
    (``$ZEVENTS_HOME``, else ``./.zevents``)."""
    return home_directory() / "archive"


class JsonLinesArchive:
    """The default ``ArchiveStore``: JSON lines, one record a line.

    Appends are flushed and fsynced before ``append`` returns; removals rewrite the
    file into a temporary one and rename it over the old one, so a crash leaves either
    file whole. A lock file next to it keeps processes from interleaving. A line that
    is not a record (the tail of a write cut short by a crash) is skipped with a
    warning and kept in the file.

    Args:
        path: A directory holding one ``<queue>.jsonl`` per queue; a path ending in
            ``.jsonl`` is one file for every queue (each record names its queue).
            Default: ``default_archive_directory()``.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_archive_directory()

    def __repr__(self) -> str:
        return f"<JsonLinesArchive {str(self.path)!r}>"

    def file_for(self, queue: str) -> Path:
        """The file holding the records of ``queue``."""
        if self.path.suffix == ".jsonl":
            return self.path
        return self.path / (urllib.parse.quote(queue, safe="") + ".jsonl")

    def append(self, records: Sequence[ArchivedMessage]) -> None:
        """Append ``records`` (each to its queue's file), flushed and fsynced."""
        by_file: dict[Path, list[bytes]] = {}
        for record in records:
            by_file.setdefault(self.file_for(record.queue), []).append(record.to_json() + b"\n")
        for path, lines in by_file.items():
            with _guarded(path, "append to"), _locked(path):
                created = not path.exists()
                with open(path, "ab") as file:
                    file.write(b"".join(lines))
                    file.flush()
                    os.fsync(file.fileno())
                if created:
                    _sync_directory(path.parent)

    def read(self, queue: str) -> list[ArchivedMessage]:
        """Every record of ``queue``, oldest first."""
        path = self.file_for(queue)
        if not path.exists():
            return []
        with _guarded(path, "read"), _locked(path):
            lines = path.read_bytes().splitlines()
        return [record for _, record in _records(path, lines) if record.queue == queue]

    def remove(self, queue: str, records: Iterable[ArchivedMessage]) -> int:
        """Remove the copies of ``records`` from ``queue``'s file; returns how many."""
        doomed = list(records)
        path = self.file_for(queue)
        if not doomed or not path.exists():
            return 0
        with _guarded(path, "rewrite"), _locked(path):
            lines = path.read_bytes().splitlines()
            drop = {
                index
                for index, record in _records(path, lines)
                if record.queue == queue and any(record.same_as(d) for d in doomed)
            }
            if drop:
                kept = [line + b"\n" for index, line in enumerate(lines) if index not in drop]
                _replace(path, b"".join(kept))
        return len(drop)


def _records(path: Path, lines: Sequence[bytes]) -> Iterator[tuple[int, ArchivedMessage]]:
    """The records of a file's lines with their line index; others are logged."""
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield index, ArchivedMessage.from_json(line)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning(
                "%s line %d is not an archived message, skipped: %s", path, index + 1, exc
            )


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all (temporary file, fsync, rename)."""
    spare = path.with_name(path.name + ".tmp")
    with open(spare, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(spare, path)
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    """fsync a directory, so a file created or renamed in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``path``'s lock file, waiting at most 30 s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + _LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise QueueError(
                        f"archive {path} is locked by another process for over "
                        f"{_LOCK_TIMEOUT:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _guarded(path: Path, action: str) -> Iterator[None]:
    """File errors as ``QueueError`` naming the archive file."""
    try:
        yield
    except OSError as exc:
        raise QueueError(f"could not {action} archive {path}: {exc}") from exc
