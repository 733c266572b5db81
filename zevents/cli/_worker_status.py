"""What ``zevents worker`` tells a person about its messages (private).

A line per failed attempt (and, with ``-v``, per finished message), from the worker's
``zevents.worker.*`` hooks; the counts behind the live status line on a terminal; and
the report a worker process under a supervisor sends it through a pipe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import orjson

from zevents.cli._progress import rate
from zevents.events import WORKER_AFTER, WORKER_BEFORE, WORKER_FAILED

if TYPE_CHECKING:
    from zevents.eventbus import Bus

__all__ = ["MessageLog", "Tally", "TallyReader", "TallyReporter", "status_line"]

# A worker process reports its tally to the supervisor this often (seconds).
_REPORT_EVERY = 0.25
# The status line's rate is over this many seconds.
_RATE_WINDOW = 5.0


@dataclass(frozen=True)
class Tally:
    """What a worker did so far.

    Attributes:
        processed: Messages finished (every handler returned).
        failed: Messages moved to the failed store.
        retried: Failed attempts put back to be tried again.
        in_hand: Messages being handled now.
    """

    processed: int = 0
    failed: int = 0
    retried: int = 0
    in_hand: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.processed + other.processed,
            self.failed + other.failed,
            self.retried + other.retried,
            self.in_hand + other.in_hand,
        )

    def describe(self, per_second: str) -> str:
        """``12 processed, 1 failed, 3 retried, 40/s, 1 in hand``, given the rate."""
        return (
            f"{self.processed:,} processed, {self.failed:,} failed, {self.retried:,} retried, "
            f"{per_second}, {self.in_hand} in hand"
        )

    def to_line(self, pid: int) -> bytes:
        """One JSON line for the supervisor's pipe (short enough to be written whole)."""
        return orjson.dumps({"pid": pid, **asdict(self)}) + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> tuple[int, Tally]:
        """The pid and tally ``to_line`` wrote.

        Raises:
            ValueError: ``line`` is not such a line.
        """
        fields: Any = orjson.loads(line)
        if not isinstance(fields, dict):
            raise ValueError("not a tally")
        pid = int(fields.pop("pid"))
        return pid, cls(**{name: int(value) for name, value in fields.items()})


class MessageLog:
    """Receivers of a worker's hooks: they count its messages and log them.

    A failed attempt is logged at WARNING (naming the message, its event, the attempt,
    the error, and when it is retried or that it went to the failed store); with
    ``verbose``, a finished message gets an INFO line too.

    Args:
        logger: Where the lines go (the command's logger, so they read as its own).
        max_attempts: The worker's retry policy's attempts, for "attempt 2 of 5".
        verbose: Log finished messages too.
    """

    def __init__(self, logger: logging.Logger, max_attempts: int, *, verbose: bool) -> None:
        self.logger = logger
        self.max_attempts = max_attempts
        self.verbose = verbose
        self._started = self._undecodable = 0
        self._finished = self._failed = self._retried = 0

    def listen(self, bus: Bus) -> None:
        """Register on the worker's bus."""
        bus.listen(WORKER_BEFORE, self._before)
        bus.listen(WORKER_AFTER, self._after)
        bus.listen(WORKER_FAILED, self._failed_attempt)

    def tally(self, settled: int) -> Tally:
        """The counts, given how many messages the worker settled (``Worker.processed``:
        a message is in hand from its ``before`` hook until it is settled)."""
        in_hand = max(0, self._started + self._undecodable - settled)
        return Tally(self._finished, self._failed, self._retried, in_hand)

    def _before(self, _event: str, _info: dict[str, Any]) -> None:
        self._started += 1

    def _after(self, _event: str, info: dict[str, Any]) -> None:
        self._finished += 1
        if self.verbose:
            self.logger.info(
                "message %s (%s) from %s finished in %.3f s on attempt %d",
                info["id"],
                info["event"],
                info["queue"],
                info["duration"],
                info["attempt"],
            )

    def _failed_attempt(self, _event: str, info: dict[str, Any]) -> None:
        if info["event"] is None:
            self._undecodable += 1
        retry_in = info.get("retry_in")
        if retry_in is None:
            self._failed += 1
            then = "moved to the failed store"
        else:
            self._retried += 1
            then = f"retried in {retry_in:.1f} s"
        self.logger.warning(
            "message %s (%s) from %s failed on attempt %d of %d: %s; %s",
            info["id"],
            info["event"] or "(undecodable)",
            info["queue"],
            info["attempt"],
            self.max_attempts,
            info["error"],
            then,
        )


@contextlib.contextmanager
def status_line(label: str, read: Callable[[], Tally]) -> Iterator[None]:
    """Redraw ``LABEL: <tally>, <rate>`` on stderr (a terminal) while the block runs.

    Log lines and prints made meanwhile go above it (rich's live display redirects
    ``sys.stderr``, and ``sys.stdout`` when that is the terminal too); it is erased at
    the end.
    """
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    samples: deque[tuple[float, int]] = deque()

    def render() -> Text:
        # The rate of the last few seconds: an average since the start says little
        # about a worker that has run for hours.
        now, tally = time.monotonic(), read()
        samples.append((now, tally.processed))
        while now - samples[0][0] > _RATE_WINDOW:
            samples.popleft()
        then, before = samples[0]
        return Text(f"{label}: {tally.describe(rate(tally.processed - before, now - then))}")

    live = Live(
        console=Console(stderr=True),
        get_renderable=render,
        refresh_per_second=4,
        transient=True,
        redirect_stdout=sys.stdout.isatty(),
        redirect_stderr=True,
    )
    with live:
        yield


class TallyReporter:
    """Sends a worker process's tally to its supervisor through a pipe, every 0.25 s
    and once at the end; when the supervisor is gone, it stops the worker.

    Args:
        fd: The pipe's write end (``--status-fd``).
        read: Gives the tally now.
        orphaned: Called (once, from the reporter's thread) when the supervisor died.
    """

    def __init__(self, fd: int, read: Callable[[], Tally], orphaned: Callable[[], None]) -> None:
        self.fd = fd
        self.read = read
        self.orphaned = orphaned
        self._parent = os.getppid()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="zevents-tally", daemon=True)

    def __enter__(self) -> TallyReporter:
        os.set_blocking(self.fd, False)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._send()
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def _loop(self) -> None:
        while not self._done.wait(_REPORT_EVERY):
            if not self._send() or os.getppid() != self._parent:
                self.orphaned()
                return

    def _send(self) -> bool:
        """Write the tally; False when the supervisor's end is closed."""
        try:
            os.write(self.fd, self.read().to_line(os.getpid()))
        except BlockingIOError:
            pass  # the supervisor is busy: the next report says it all again
        except OSError:
            return False
        return True


class TallyReader:
    """The latest tally of each worker process, read from the pipe they report to
    (the supervisor's end of ``TallyReporter``).

    Args:
        fd: The pipe's read end.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending = b""
        self.latest: dict[int, Tally] = {}
        self.retired = Tally()
        os.set_blocking(fd, False)

    def fileno(self) -> int:
        """The read end, to select on."""
        return self.fd

    def pump(self) -> None:
        """Read every report waiting in the pipe."""
        with contextlib.suppress(BlockingIOError):
            while data := os.read(self.fd, 65536):
                *lines, self.pending = (self.pending + data).split(b"\n")
                for line in lines:
                    with contextlib.suppress(ValueError, TypeError, KeyError):
                        pid, tally = Tally.from_line(line)
                        self.latest[pid] = tally

    def retire(self, pid: int) -> None:
        """Process ``pid`` ended: keep its counts, nothing is in its hand any more."""
        last = self.latest.pop(pid, Tally())
        self.retired += Tally(last.processed, last.failed, last.retried)

    def total(self) -> Tally:
        """The counts of every process so far, ended ones included."""
        return sum(self.latest.values(), self.retired)
