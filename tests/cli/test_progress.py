"""The progress line of long ``emit`` runs."""

from __future__ import annotations

import io

import pytest

from zevents.cli import _progress
from zevents.cli._progress import Progress, rate


def test_progress_draws_counts_and_rate_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_progress, "_REDRAW_EVERY", 0.0)
    stream = io.StringIO()
    progress = Progress(stream, enabled=True)
    progress.started -= 2.0
    progress.update(100)
    progress.clear()
    text = stream.getvalue()
    assert "zevents emit: 100 sent (" in text
    assert "/s)" in text
    assert text.endswith("\r\x1b[K")


def test_progress_is_off_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress.update(5)
    progress.clear()
    assert stream.getvalue() == ""
    assert rate(30, 2.0) == "15/s"
    assert rate(1, 2.0) == "0.5/s"
