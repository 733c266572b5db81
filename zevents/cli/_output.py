"""What the commands write to stdout: JSON lines, and a stdout that can no longer fail."""

from __future__ import annotations

import os
import sys
from typing import Any

import orjson

from zevents.serializers import JSON_OPTIONS

__all__ = ["json_line", "print_json", "silence_stdout"]


def _fallback(obj: Any) -> Any:
    # Payloads decoded by a non-JSON serializer (from a config file) may hold anything.
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)


def json_line(value: Any) -> bytes:
    """``value`` as one compact JSON line, newline included; never fails to encode."""
    return orjson.dumps(value, default=_fallback, option=JSON_OPTIONS) + b"\n"


def print_json(value: Any) -> None:
    """Write ``value`` to stdout as one JSON line and flush it."""
    sys.stdout.buffer.write(json_line(value))
    sys.stdout.buffer.flush()


def silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
