"""Tables and live redraws for the command line, drawn with rich.

rich is imported inside the functions that draw, so commands that draw nothing (``emit``
above all) never pay for importing it.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["age_text", "is_terminal", "local_time", "make_table", "print_table", "watch"]

# Wider than any table a program prints: a table off a terminal is measured first, and
# drawn exactly as wide as it needs (no cell is cut, none is wrapped).
_UNLIMITED = 1_000_000


def is_terminal() -> bool:
    """Whether stdout is a terminal (people read it) rather than a pipe or a file."""
    try:
        return sys.stdout.isatty()
    except ValueError:  # closed
        return False


def make_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    numeric: Collection[str] = (),
    wrap: Collection[str] = (),
    caption: str | None = None,
) -> Table:
    """A table of ``rows`` under ``columns``; cells are plain text (never rich markup).

    Args:
        columns: The headers.
        rows: One sequence of cell texts per row.
        numeric: The headers of the columns aligned right.
        wrap: The headers of the columns whose long cells wrap on a narrow terminal
            (the others keep one line: an id cut in two is no use).
        caption: A line under the table.
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, caption=caption, header_style="bold"
    )
    for name in columns:
        table.add_column(
            name,
            justify="right" if name in numeric else "left",
            no_wrap=name not in wrap,
            overflow="fold" if name in wrap else "ellipsis",
        )
    for row in rows:
        # Text, not str: a payload's "[bold]" or ":smile:" is data, not markup.
        table.add_row(*(Text(cell) for cell in row))
    return table


def print_table(table: Table) -> None:
    """Print ``table`` to stdout: fitted to a terminal (long cells wrap), else whole, as
    wide as its widest row, with no colour and no trailing spaces."""
    from rich.console import Console

    if is_terminal():
        Console(highlight=False).print(table)
        return
    measuring = Console(file=io.StringIO(), width=_UNLIMITED)
    width = measuring.measure(table).maximum
    console = Console(file=io.StringIO(), width=max(width, 1), color_system=None, highlight=False)
    with console.capture() as captured:
        console.print(table)
    lines = captured.get().splitlines()
    sys.stdout.write("".join(line.rstrip() + "\n" for line in lines))
    sys.stdout.flush()


def watch(render: Callable[[], Table], interval: float) -> None:
    """Draw ``render()`` on the terminal and redraw it every ``interval`` seconds, in
    place, until Ctrl-C (which returns normally; the last drawing stays on screen)."""
    from rich.console import Console
    from rich.live import Live

    try:
        with Live(render(), console=Console(highlight=False), auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(render(), refresh=True)
    except KeyboardInterrupt:
        return


def age_text(seconds: float | None) -> str:
    """A duration for people: ``-`` (none), ``42s``, ``3m05s``, ``2h10m``, ``4d03h``."""
    if seconds is None:
        return "-"
    whole = int(max(0.0, seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def local_time(timestamp: float) -> str:
    """Unix seconds as local date and time, to the second."""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
