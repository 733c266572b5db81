"""Signal handling and wake-ups shared by the service and the Redis worker (private).

pyzmq and redis-py retry interrupted waits by themselves, so a signal handler that only
sets a flag would not end a long poll. A ``Waker`` is a self-pipe: its read end sits in
the poll set (or is selected on), and ``wake()`` (safe from signal handlers and other
threads) makes that wait return at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_STOP_SIGNALS", "SignalHandler", "Waker", "installed_signal_handlers"]

#: Signals that stop a service or worker gracefully by default.
DEFAULT_STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
#: Signals ignored by default (a closed terminal must not stop a daemon).
DEFAULT_IGNORED_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGHUP,)

SignalHandler = Callable[[int, FrameType | None], object]


class Waker:
    """A self-pipe: ``wake()`` makes a wait on ``fileno()`` return."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._pid = os.getpid()

    def fileno(self) -> int:
        """The read end, to register with a poller or ``select``."""
        return self._read

    def wake(self) -> None:
        """Make the wait return; safe in signal handlers and from any thread."""
        with contextlib.suppress(OSError):  # a full pipe already wakes the reader
            os.write(self._write, b"\0")

    def drain(self) -> None:
        """Empty the pipe after a wake-up."""
        with contextlib.suppress(OSError):
            while os.read(self._read, 512):
                pass

    def close(self) -> None:
        """Close both ends (only in the process that made them)."""
        if os.getpid() != self._pid:
            return
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def installed_signal_handlers(
    handlers: dict[int, SignalHandler | int],
) -> Iterator[bool]:
    """Install signal handlers for the duration of a ``with`` block, then restore them.

    Does nothing (and yields False) off the main thread, where Python cannot install
    handlers.

    Args:
        handlers: Signal number to handler (or ``signal.SIG_IGN``/``SIG_DFL``).
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous: dict[int, object] = {}
    try:
        for signum, handler in handlers.items():
            previous[signum] = signal.signal(signum, handler)
        yield True
    finally:
        for signum, old in previous.items():
            with contextlib.suppress(ValueError, TypeError, OSError):
                signal.signal(signum, old)  # type: ignore[arg-type]


def stop_handlers(
    stop: Callable[[], None],
    stop_signals: Iterable[int] = DEFAULT_STOP_SIGNALS,
    ignored: Iterable[int] = DEFAULT_IGNORED_SIGNALS,
    custom: SignalHandler | None = None,
) -> dict[int, SignalHandler | int]:
    """Handlers that call ``stop()`` on ``stop_signals`` and do nothing on ``ignored``.

    With ``custom``, that handler is installed for every listed signal instead.
    """

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop()

    def on_ignored(signum: int, _frame: FrameType | None) -> None:
        logger.info("ignoring %s", signal.Signals(signum).name)

    handlers: dict[int, SignalHandler | int] = {}
    for signum in ignored:
        handlers[signum] = custom or on_ignored
    for signum in stop_signals:
        handlers[signum] = custom or on_stop
    return handlers
