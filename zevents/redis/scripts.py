"""The Lua scripts of the queue drivers, read once from ``lua/`` and run by SHA."""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["script_source"]

_CORE = ("lib.lua",)
_STREAM = ("lib.lua", "stream_lib.lua")
# Scripts that need no shared prelude (and take only the keys they touch).
_STANDALONE = ("send_plain.lua", "send_plain_many.lua")


@cache
def _read(name: str) -> str:
    return (resources.files("zevents.redis") / "lua" / name).read_text("utf-8")


@cache
def script_source(name: str) -> str:
    """The full source of script ``name``: the shared prelude(s), then the script."""
    if name.startswith("registry_") or name in _STANDALONE:
        return _read(name)
    prelude = _STREAM if name.startswith("stream_") else _CORE
    return "\n".join([*(_read(part) for part in prelude), _read(name)])
