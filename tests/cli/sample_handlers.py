"""Handlers for ``zevents serve --handler`` in the CLI tests (imported by the child).

Each appends ``{"event": ..., "payload": ...}`` lines to the file named by the
environment variable ``ZEV_TEST_OUT``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson

#: Not callable: ``--handler sample_handlers:NOT_CALLABLE`` must be refused.
NOT_CALLABLE = 42


def record(event: str, payload: Any) -> None:
    """Record every event it is given."""
    with open(os.environ["ZEV_TEST_OUT"], "ab") as out:
        out.write(orjson.dumps({"event": event, "payload": payload}) + b"\n")


def record_unless_boom(event: str, payload: Any) -> None:
    """Raise on the event ``boom``; record the others."""
    if event == "boom":
        raise ValueError("boom was fired")
    record(event, payload)


def fail_on_flag(event: str, payload: Any) -> None:
    """Raise when the payload has ``"fail": true``; otherwise do nothing."""
    if isinstance(payload, dict) and payload.get("fail"):
        raise ValueError("flagged to fail")


def record_slowly(event: str, payload: Any) -> None:
    """Take a second (longer than a sender's short --timeout), then record the event."""
    time.sleep(1.0)
    record(event, payload)
