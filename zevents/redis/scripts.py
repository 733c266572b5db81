"""The Lua scripts of the queue, read once from ``lua/`` (importable without redis-py).

A queue script is the shared prelude ``lib.lua`` (plus ``stream_lib.lua`` for the
stream scripts) followed by the script itself; the registry scripts and the lean send
scripts stand alone and take only the keys they touch.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

__all__ = ["script_sha", "script_source"]

_CORE = ("lib.lua",)
_STREAM = ("lib.lua", "stream_lib.lua")
# Scripts that need no shared prelude (and take only the keys they touch).
_STANDALONE = ("send_plain.lua", "send_plain_many.lua", "queue_meta.lua")


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


@cache
def script_sha(name: str) -> str:
    """The SHA1 Redis knows script ``name`` by (``EVALSHA``)."""
    return hashlib.sha1(script_source(name).encode()).hexdigest()
