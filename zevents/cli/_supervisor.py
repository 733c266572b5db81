"""The supervisor of ``zevents worker --concurrency N`` (private).

It runs N worker processes, restarts one that dies (after a backoff), and stops them
all together. Each worker process is ``python -m zevents worker`` with the user's own
options: the very command one can run alone, with its option checks, logging and
signal handling, and a fresh interpreter that inherits nothing of the supervisor's
(a fork would share its sockets and threads; ``multiprocessing``'s spawn method would
be as fresh, but would need the command rebuilt from pickled options in the child).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import IO

import click

from zevents._signals import SignalHandler, Waker, installed_signal_handlers
from zevents.cli._options import given
from zevents.cli._progress import rate
from zevents.cli._worker_status import TallyReader, status_line

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_STOP_TIMEOUT", "STATUS_FD_OPTION", "Supervisor", "replay_options"]

#: Seconds worker processes get to finish the message in hand once asked to stop.
DEFAULT_STOP_TIMEOUT = 30.0
#: The hidden option through which a worker process reports to its supervisor.
STATUS_FD_OPTION = "--status-fd"

# A worker process that died is restarted after _RESTART_FIRST seconds, doubled each
# time it dies again, up to _RESTART_MAX; one that ran _STEADY seconds starts over.
_RESTART_FIRST = 0.5
_RESTART_MAX = 10.0
_STEADY = 30.0
# How often the supervisor looks at its processes (seconds), and the longest wait for
# one that was sent SIGKILL, or for the output a finished one left in its pipes.
_POLL = 0.1
_KILL_WAIT = 5.0
_DRAIN_WAIT = 1.0


def replay_options(ctx: click.Context, skip: Collection[str]) -> list[str]:
    """The options the user gave to ``ctx``'s command, as command-line words again.

    Args:
        ctx: The command's context, its parameters parsed.
        skip: Names of parameters to leave out.
    """
    words: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if not isinstance(param, click.Option) or name is None or name in skip:
            continue
        if not given(ctx, name):
            continue
        value = ctx.params[name]
        if param.is_flag:
            words += [param.opts[0]] if value else []
            continue
        for item in value if param.multiple else (value,):
            words += [param.opts[0], _word(item)]
    return words


def _word(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return repr(value) if isinstance(value, float) else str(value)


def _how_it_ended(returncode: int) -> str:
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


def _signal_all(processes: list[subprocess.Popen[bytes]], signum: int) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)


def _exit(message: str, code: int) -> click.ClickException:
    error = click.ClickException(message)
    error.exit_code = code
    return error


class _Relay:
    """Copies a worker process's output pipe, whole lines at a time, to our ``stdout``
    or ``stderr`` (whatever ``sys`` has then: above the status line while it shows)."""

    def __init__(self, stream: IO[bytes], target: str) -> None:
        self.stream = stream
        self.target = target
        self.pending = b""
        os.set_blocking(stream.fileno(), False)

    def fileno(self) -> int:
        return self.stream.fileno()

    def pump(self) -> bool:
        """Copy what the pipe holds; False at its end (the rest is copied then)."""
        try:
            data = os.read(self.fileno(), 65536)
        except BlockingIOError:
            return True
        if not data:
            self._write(self.pending)
            self.pending = b""
            return False
        complete, newline, self.pending = (self.pending + data).rpartition(b"\n")
        self._write(complete + newline)
        return True

    def _write(self, data: bytes) -> None:
        if data:
            out = sys.stdout if self.target == "stdout" else sys.stderr
            out.write(data.decode(errors="replace"))
            out.flush()


@dataclass
class _Slot:
    """One of the N places a worker process runs in."""

    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    delay: float = _RESTART_FIRST
    #: When to start it again (monotonic seconds), after it died.
    due: float | None = None
    #: It exited 0 by itself (--max-messages, a shutdown request): not restarted.
    done: bool = False


@dataclass(frozen=True)
class _Failure:
    message: str
    exit_code: int


class Supervisor:
    """Runs ``concurrency`` worker processes of ``command`` until it is stopped.

    SIGTERM and SIGINT stop them all: each gets SIGTERM and finishes the message in
    hand; past ``stop_timeout`` the ones left get SIGKILL. A second SIGINT sends SIGKILL
    at once. SIGHUP is ignored.

    Args:
        command: A worker process's command line (``--status-fd FD`` is added to it).
        concurrency: How many worker processes.
        max_restarts: Restarts allowed in all (None: no limit); a death past them stops
            the others.
        stop_timeout: Seconds the processes get to stop before they are killed.
        draw: Show the live status line on stderr, the processes' output above it.
    """

    def __init__(
        self,
        command: Sequence[str],
        concurrency: int,
        *,
        max_restarts: int | None,
        stop_timeout: float,
        draw: bool,
    ) -> None:
        self.command = list(command)
        self.max_restarts = max_restarts
        self.stop_timeout = stop_timeout
        self.draw = draw
        self._slots = [_Slot() for _ in range(concurrency)]
        self._restarts = 0
        self._stopping = self._forced = False
        self._started = time.monotonic()
        self._waker = Waker()
        self._relays: list[_Relay] = []
        read, self._status_write = os.pipe()
        self._tallies = TallyReader(read)

    def run(self) -> int:
        """Start the processes and supervise them until they are stopped or all ended.

        Returns:
            0: stopped by SIGTERM or SIGINT, or every process finished by itself.

        Raises:
            click.ClickException: A process died past ``max_restarts`` (exit 1), exited
                with a usage error (2), or had to be killed at the stop deadline (1).
            KeyboardInterrupt: A second SIGINT (the processes were killed at once).
        """
        handlers: dict[int, SignalHandler | int] = {
            signal.SIGTERM: self._on_stop,
            signal.SIGINT: self._on_interrupt,
            signal.SIGHUP: self._on_hangup,
        }
        label = f"zevents worker ({len(self._slots)} processes)"
        drawing = status_line(label, self._tallies.total) if self.draw else None
        with installed_signal_handlers(handlers), drawing or contextlib.nullcontext():
            try:
                failure = self._supervise()
            finally:
                killed = self._stop_all()
                self._close()
        return self._outcome(failure, killed)

    # --- signals (flags and a wake-up only) -------------------------------------------

    def _on_stop(self, _signum: int, _frame: FrameType | None) -> None:
        self._stopping = True
        self._waker.wake()

    def _on_interrupt(self, _signum: int, _frame: FrameType | None) -> None:
        self._forced = self._stopping
        self._stopping = True
        self._waker.wake()

    def _on_hangup(self, _signum: int, _frame: FrameType | None) -> None:
        pass  # a closed terminal must not stop the workers

    # --- running ---------------------------------------------------------------------

    def _supervise(self) -> _Failure | None:
        for slot in self._slots:
            self._start(slot)
        pids = ", ".join(str(s.process.pid) for s in self._slots if s.process)
        logger.info("supervising %d worker processes (pids %s)", len(self._slots), pids)
        while not self._stopping:
            self._wait(_POLL)
            now = time.monotonic()
            for slot in self._slots:
                process = slot.process
                if process is not None and process.poll() is not None:
                    failure = self._ended(slot, process, now)
                    if failure is not None:
                        return failure
                elif slot.due is not None and now >= slot.due and not self._stopping:
                    self._start(slot)
            if all(slot.done for slot in self._slots):
                logger.info("every worker process finished")
                return None
        return None

    def _start(self, slot: _Slot) -> None:
        stdout = subprocess.PIPE if self.draw and sys.stdout.isatty() else None
        process = subprocess.Popen(
            [*self.command, STATUS_FD_OPTION, str(self._status_write)],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE if self.draw else None,
            pass_fds=(self._status_write,),
        )
        for stream, target in ((process.stdout, "stdout"), (process.stderr, "stderr")):
            if stream is not None:
                self._relays.append(_Relay(stream, target))
        slot.process, slot.started, slot.due = process, time.monotonic(), None

    def _ended(self, slot: _Slot, process: subprocess.Popen[bytes], now: float) -> _Failure | None:
        """Process of ``slot`` ended: note it, and schedule its restart or say why not."""
        self._tallies.pump()
        self._tallies.retire(process.pid)
        slot.process = None
        pid, code = process.pid, process.returncode
        if code == 0:
            slot.done = True
            logger.info("worker process %d finished", pid)
            return None
        how = _how_it_ended(code)
        if code == 2:
            return _Failure(f"worker process {pid} {how} (a usage error); stopped the others", 2)
        if self.max_restarts is not None and self._restarts >= self.max_restarts:
            return _Failure(
                f"worker process {pid} {how} and --max-restarts {self.max_restarts} is used "
                "up; stopped the others",
                1,
            )
        if now - slot.started >= _STEADY:
            slot.delay = _RESTART_FIRST
        self._restarts += 1
        slot.due = now + slot.delay
        limit = f" of {self.max_restarts}" if self.max_restarts is not None else ""
        logger.warning(
            "worker process %d %s; restarting it in %.1f s (restart %d%s)",
            pid,
            how,
            slot.delay,
            self._restarts,
            limit,
        )
        slot.delay = min(slot.delay * 2, _RESTART_MAX)
        return None

    def _wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` for a signal or output, and copy the output."""
        sources: list[Waker | TallyReader | _Relay] = [self._waker, self._tallies, *self._relays]
        ready, _, _ = select.select(sources, [], [], timeout)
        for source in ready:
            if source is self._waker:
                self._waker.drain()
            elif source is self._tallies:
                self._tallies.pump()
            elif isinstance(source, _Relay) and not source.pump():
                source.stream.close()
                self._relays.remove(source)

    # --- stopping --------------------------------------------------------------------

    def _alive(self) -> list[subprocess.Popen[bytes]]:
        return [s.process for s in self._slots if s.process and s.process.poll() is None]

    def _stop_all(self) -> int:
        """Stop every process; how many had to be killed at the deadline."""
        self._stopping = True
        alive = self._alive()
        if alive and not self._forced:
            logger.info(
                "stopping %d worker process(es): each finishes the message in hand (at most %g s)",
                len(alive),
                self.stop_timeout,
            )
            _signal_all(alive, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while self._alive() and not self._forced and time.monotonic() < deadline:
                self._wait(_POLL)
        alive = self._alive()
        if not alive:
            return 0
        if self._forced:
            logger.warning("second interrupt: killing %d worker process(es) now", len(alive))
        else:
            logger.warning(
                "%d worker process(es) did not stop within %g s; killing them",
                len(alive),
                self.stop_timeout,
            )
        _signal_all(alive, signal.SIGKILL)
        for process in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(_KILL_WAIT)
        return 0 if self._forced else len(alive)

    def _close(self) -> None:
        """Copy what the processes left in their pipes, then close everything."""
        deadline = time.monotonic() + _DRAIN_WAIT
        while self._relays and time.monotonic() < deadline:
            self._wait(_POLL)
        for relay in self._relays:
            relay.stream.close()
        self._tallies.pump()
        for slot in self._slots:
            if slot.process is not None:
                self._tallies.retire(slot.process.pid)
        for fd in (self._tallies.fd, self._status_write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._waker.close()

    def _outcome(self, failure: _Failure | None, killed: int) -> int:
        if self._forced:
            raise KeyboardInterrupt
        if failure is not None:
            raise _exit(failure.message, failure.exit_code)
        if killed:
            raise _exit(
                f"{killed} worker process(es) did not stop within {self.stop_timeout:g} s "
                "and were killed; the messages they held go back to their queues when "
                "their leases expire",
                1,
            )
        elapsed = time.monotonic() - self._started
        total = self._tallies.total()
        summary = total.describe(rate(total.processed, elapsed))
        logger.info("%d worker processes stopped: %s", len(self._slots), summary)
        return 0
