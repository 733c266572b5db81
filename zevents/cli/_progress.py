"""A one-line progress display for long ``emit`` runs, shown only on a terminal."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress", "rate"]

# Redraw at most this often (seconds): a terminal is slow next to a socket.
_REDRAW_EVERY = 0.2


def rate(count: int, seconds: float) -> str:
    """Events per second, for people."""
    if seconds <= 0:
        return "-"
    per_second = count / seconds
    return f"{per_second:,.0f}/s" if per_second >= 10 else f"{per_second:.1f}/s"


class Progress:
    """Redraws ``events sent, rate`` on one stderr line while events go out.

    Args:
        stream: Where to draw (stderr).
        enabled: Draw at all; by default only when ``stream`` is a terminal.
    """

    def __init__(self, stream: TextIO, enabled: bool | None = None) -> None:
        self.stream = stream
        if enabled is None:
            try:
                enabled = stream.isatty()
            except (AttributeError, ValueError):
                enabled = False
        self.enabled = enabled
        self.started = time.monotonic()
        self._next_draw = self.started + _REDRAW_EVERY
        self._drawn = False

    @property
    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.started

    def update(self, sent: int) -> None:
        """Note the count so far; redraw if it is time to."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._next_draw:
            return
        self._next_draw = now + _REDRAW_EVERY
        text = f"zevents emit: {sent:,} sent ({rate(sent, now - self.started)})"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._drawn = True

    def clear(self) -> None:
        """Erase the progress line, so the summary starts on a clean line."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False
