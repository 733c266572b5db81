"""The Redis key layout of a queue: every key of one queue shares the hash tag ``{name}``."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

from zevents.errors import ConfigError
from zevents.redis.defaults import DEFAULT_PREFIX

__all__ = ["QueueKeys", "meta_key", "queues_key", "shutdown_key", "unique_name", "workers_key"]

_FIXED = (
    "msgs",
    "delayed",
    "processing",
    "leases",
    "attempts",
    "failed",
    "idents",
    "ident_ids",
    "serial",
    "seq",
    "status",
)


@dataclass(frozen=True)
class QueueKeys:
    """The keys of queue ``name``.

    Args:
        name: The queue name (it must not contain ``{`` or ``}``).
        priorities: The priority levels, highest first.
        stream: Whether the ready keys are streams (``stream:<p>``) or not (``ready:<p>``).
        prefix: Prefix of every key.
    """

    name: str
    priorities: tuple[int, ...]
    stream: bool = False
    prefix: str = DEFAULT_PREFIX
    base: str = field(init=False)

    def __post_init__(self) -> None:
        if not self.name or "{" in self.name or "}" in self.name:
            raise ConfigError(
                f"queue name {self.name!r} must be non-empty, without braces", option="name"
            )
        object.__setattr__(self, "base", f"{self.prefix}{{{self.name}}}:")

    def key(self, part: str) -> str:
        """The full key of one part (``msgs``, ``failed``, ``meta``, ...)."""
        return self.base + part

    def data_keys(self) -> list[str]:
        """The keys that hold messages: some exists as long as the queue holds one. (Not
        ``processing``: a leased message's body is in ``msgs``, and the set of leases
        keeps a member of its own once a consumer has taken one; see take.lua.)"""
        parts = ("msgs", "delayed", "failed", "serial")
        return [self.base + part for part in parts] + [self.ready(p) for p in self.priorities]

    def ready(self, priority: int) -> str:
        """The ready list, sorted set, set or stream of one priority."""
        return f"{self.base}{'stream' if self.stream else 'ready'}:{priority}"

    def script_keys(self) -> list[str]:
        """The KEYS every queue script takes, in the order ``lib.lua`` expects."""
        return [self.base + part for part in _FIXED] + [self.ready(p) for p in self.priorities]


def meta_key(name: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The hash recording what queue ``name`` is (driver, priority levels)."""
    return f"{prefix}{{{name}}}:meta"


def queues_key(prefix: str = DEFAULT_PREFIX) -> str:
    """The set of the queue names recorded under ``prefix``."""
    return f"{prefix}queues"


def workers_key(prefix: str = DEFAULT_PREFIX) -> str:
    """The hash of worker heartbeats."""
    return f"{prefix}workers"


def shutdown_key(prefix: str = DEFAULT_PREFIX) -> str:
    """The key holding the time (ms) of the last shutdown request."""
    return f"{prefix}shutdown"


def unique_name() -> str:
    """A name no other process or object uses: ``host:pid:<8 random hex digits>`` (for
    workers and stream consumers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
