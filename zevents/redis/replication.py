"""Writes confirmed by replicas: ``min_replicas`` and Redis ``WAIT`` (sans-I/O).

Redis replicates asynchronously: a write the master accepted is lost if the master
dies before a replica has it. ``replicated`` runs a plan that writes, then a ``WAIT``;
writes fewer replicas acknowledged in time fail with ``ReplicationError``. Importable
without redis-py.

A ``Wait`` step is run as ``INCR`` of its key, then ``WAIT``: a plan may write nothing
(a unique send that matches a message another producer sent a moment ago, or a set
queue that already holds the body), and since Redis 7 a connection's ``WAIT`` covers
only that connection's own last write, so without a write of its own it would confirm
at once what no replica may have yet. The marker comes after the matched message in the
replication stream: a replica that has the marker has the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from zevents.errors import ConfigError, ReplicationError
from zevents.redis.defaults import DEFAULT_MIN_REPLICAS, DEFAULT_REPLICA_TIMEOUT
from zevents.redis.protocol.steps import Batch, Plan, Wait

__all__ = ["Replication", "replicated"]

T = TypeVar("T")


@dataclass(frozen=True)
class Replication:
    """How many replicas must acknowledge a write, and how long to wait for them.

    Attributes:
        min_replicas: Replicas that must have the write (0: the master's word is enough).
        timeout: Seconds ``WAIT`` blocks at most.

    Raises:
        ConfigError: A negative or non-integer count, or a timeout that is not > 0.
    """

    min_replicas: int = DEFAULT_MIN_REPLICAS
    timeout: float = DEFAULT_REPLICA_TIMEOUT

    def __post_init__(self) -> None:
        count = self.min_replicas
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(
                f"min_replicas must be a whole number >= 0, not {count!r}", option="min_replicas"
            )
        timeout = self.timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(
                f"replica_timeout must be a number of seconds > 0, not {timeout!r}",
                option="replica_timeout",
            )

    def within(self, socket_timeout: float) -> Replication:
        """This, checked against the connection's ``socket_timeout``: a ``WAIT`` that may
        block as long as a read may take would end as a timeout, not as an answer.

        Raises:
            ConfigError: Replicas are asked for and ``timeout >= socket_timeout``.
        """
        if self.is_required and self.timeout >= socket_timeout:
            raise ConfigError(
                f"replica_timeout ({self.timeout:g} s) must be shorter than socket_timeout "
                f"({socket_timeout:g} s), or WAIT's answer would arrive after the read gave up",
                option="replica_timeout",
            )
        return self

    def asked(self, min_replicas: int | None, socket_timeout: float) -> Replication:
        """This, or ``min_replicas`` replicas instead (one write's own ask, None: this),
        checked against ``socket_timeout`` as the queue's own was (see ``within``).

        Raises:
            ConfigError: A bad count, or ``WAIT`` that could outlast the read.
        """
        if min_replicas is None:
            return self
        return Replication(min_replicas, self.timeout).within(socket_timeout)

    @property
    def is_required(self) -> bool:
        """Whether writes wait for replicas at all."""
        return self.min_replicas > 0

    def wait(self, key: str) -> Wait:
        """The ``WAIT`` step for writes to ``key``'s slot (at least 1 ms: 0 would block
        for ever)."""
        return Wait(self.min_replicas, max(1, round(self.timeout * 1000)), key)


def replicated(plan: Plan[T], replication: Replication, key: str, what: str) -> Plan[T]:
    """``plan``, then ``WAIT`` for its writes.

    The ``Wait`` step runs as ``INCR key`` then ``WAIT`` on one connection: the marker
    write comes after every write of the plan in the replication stream, so the replicas
    that have it have them all, whichever connections the plan's steps used.

    Args:
        plan: A plan whose steps write to ``key``'s slot.
        replication: The replicas to wait for.
        key: A key of the slot written to, which only ``WAIT``'s marker write uses (a
            cluster sends the marker and ``WAIT`` to that slot's master).
        what: What is written, for the error (``"send to 'orders'"``).

    Raises:
        ReplicationError: Fewer than ``min_replicas`` replicas acknowledged the writes in
            time (they are on the master, not confirmed).
    """
    result = yield from plan
    if replication.is_required:
        replies: list[Any] = yield Batch([replication.wait(key)])
        check_acknowledged(replies[-1], replication, what)
    return result


def check_acknowledged(reply: Any, replication: Replication, what: str) -> None:
    """Raise ``ReplicationError`` if ``WAIT``'s ``reply`` is below ``min_replicas``."""
    acknowledged, wanted = int(reply), replication.min_replicas
    if acknowledged >= wanted:
        return
    raise ReplicationError(
        f"{what}: {acknowledged} of {wanted} replica(s) acknowledged the write within "
        f"{replication.timeout:g} s; it is on the master but not confirmed (it is lost "
        "if the master fails before a replica has it)",
        acknowledged=acknowledged,
        wanted=wanted,
    )
