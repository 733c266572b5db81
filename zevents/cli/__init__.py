"""The ``zevents`` command line: ``serve``, ``emit``, ``bridge``, ``worker``, ``queue``
and ``version``, one module each (``app`` holds the group).

``main`` is the console-script entry point; ``cli`` is the click group, for embedding
and for click's test runner.
"""

from __future__ import annotations

from zevents.cli.app import cli, main

__all__ = ["cli", "main"]
