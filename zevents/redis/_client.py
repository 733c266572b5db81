"""The blocking I/O of the Redis layer (private): connections, running plans, errors.

``Runner`` runs the plans of ``zevents.redis.protocol`` on one redis-py client: Lua
scripts by SHA (loading them after ``NOSCRIPT``), commands by name, batches in one
pipeline (a batch ending in ``WAIT`` on one connection: the master's, on a cluster). It
is the one place where redis-py errors become zevents errors.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import redis
from redis.exceptions import AskError, ClusterDownError, RedisClusterException, TryAgainError

from zevents.errors import QueueError, QueueUnavailable
from zevents.redis.connections import resolve_redis
from zevents.redis.defaults import DEFAULT_SOCKET_TIMEOUT
from zevents.redis.embedded import embedded_url
from zevents.redis.protocol.steps import Batch, Call, Command, Plan, Step, Wait, step_replies
from zevents.redis.scripts import script_sha, script_source
from zevents.redis.urls import check_url, cluster_node_url, is_cluster, mask_url

_pack_command: Any
try:
    from hiredis import pack_command as _pack_command
except ImportError:  # redis-py without hiredis: its own packer
    _pack_command = None

__all__ = [
    "Begun",
    "Runner",
    "close",
    "connect",
    "kept_room",
    "mask_url",
    "resolve_url",
    "translation",
]

T = TypeVar("T")

#: How many connections a ``Runner`` keeps out of its pool between script calls: two,
#: as a worker holds one round trip while it sends the next.
KEPT_CONNECTIONS = 2

#: redis-py errors that mean "not now" rather than "refused": a node that cannot be
#: reached, a cluster failing over (``CLUSTERDOWN``, ``TRYAGAIN``), a slot that moved.
_UNAVAILABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    ClusterDownError,
    TryAgainError,
    AskError,
    RedisClusterException,
)


def resolve_url(url: str | None, connection: str | None = None) -> str:
    """The URL to use: ``url``; else connection ``connection`` of the config file; else
    ``$ZEVENTS_REDIS_URL``, else the file's ``[redis.default]``; else the embedded Redis's
    (started if needed; see ``zevents.redis.embedded``).

    Raises:
        ConfigError: A URL redis-py would misread (see ``urls.check_url``), or an
            unknown connection.
        EmbeddedRedisMissing: No URL, and the ``embedded`` extra is not installed.
        QueueUnavailable: The embedded Redis did not start.
    """
    if url:
        return check_url(url)
    found, _ = resolve_redis(connection)
    return found if found is not None else embedded_url()


def connect(url: str, *, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT) -> Any:
    """A client for ``url`` whose every call is bounded by ``socket_timeout`` seconds: a
    ``redis.Redis``, or a ``redis.cluster.RedisCluster`` for ``redis+cluster://``.

    Raises:
        QueueError: redis-py refused the URL.
        QueueUnavailable: No node of a cluster answered (a cluster client asks one
            for the slot map at once).
    """
    timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_timeout}
    try:
        if is_cluster(url):
            from redis.cluster import RedisCluster

            plain = cluster_node_url(url)
            try:
                return RedisCluster.from_url(plain, **timeouts)
            except (redis.RedisError, RedisClusterException) as exc:
                raise translation(url, "connect to the cluster", exc) from exc
        return redis.Redis.from_url(url, health_check_interval=30, **timeouts)
    except ValueError as exc:
        raise QueueError(f"bad Redis URL {mask_url(url)!r}: {exc}") from exc


def close(client: Any) -> None:
    """Close a client ``connect`` made, and the connections of its pool (a cluster
    client closes those of every node)."""
    client.close()
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        pool.disconnect()


def translation(url: str, action: str, exc: Exception) -> QueueError:
    """The zevents error for a redis-py error."""
    if isinstance(exc, _UNAVAILABLE):
        return QueueUnavailable(f"Redis at {mask_url(url)} is unavailable ({action}): {exc}")
    return QueueError(f"Redis at {mask_url(url)} failed ({action}): {exc}")


class Runner:
    """Runs plans on one redis-py client (``redis.Redis`` or ``RedisCluster``).

    Args:
        client: The client.
        url: Its URL, for error messages (password masked).
        keep: Keep up to ``KEPT_CONNECTIONS`` connections out of the client's pool
            between script calls (only for a client of our own: one the caller shares
            gets every connection back at once). ``close`` gives them back.
    """

    def __init__(self, client: Any, url: str, *, keep: bool = False) -> None:
        self.client = client
        self.url = url
        # Script calls go straight to a pooled connection on a single server (cheaper
        # than redis-py's command path); a cluster client routes them itself.
        self._cluster = isinstance(client, redis.RedisCluster)
        self._direct = not self._cluster
        # Connections kept between script calls: taking one from redis-py's pool and
        # giving it back costs about as much as the call itself (its lock and metrics).
        self._kept: list[Any] = []
        self._room = kept_room(client.connection_pool) if keep and self._direct else 0
        self._pid = os.getpid()

    def run(self, plan: Plan[T], action: str) -> T:
        """Run ``plan`` to its result.

        Raises:
            QueueUnavailable: Redis cannot be reached or did not answer in time.
            QueueError: Redis refused a command.
        """
        return self.begin(plan, action).finish()

    def _step(self, step: Step) -> Any:
        if self._direct:
            calls = script_calls(step)
            if calls is not None:
                return self._receive(step, calls, self._send(calls))
        if isinstance(step, Call):
            return self._call(step)
        if isinstance(step, Command):
            return getattr(self.client, step.method)(*step.args)
        waits = [s for s in step.steps if isinstance(s, Wait)]
        if waits and self._cluster:
            return self._on_master(step, waits[0].key)
        return self._batch(self.client, step)

    def _on_master(self, batch: Batch, key: str) -> list[Any]:
        """Run a batch that ends in ``WAIT`` on the master of ``key``'s slot, over one
        connection (WAIT counts the writes of its own connection; a cluster pipeline
        could split them). A slot that moved is tried once more on its new master
        (nothing was written)."""
        try:
            return self._on_node(batch, key)
        except AskError:
            return self._on_node(batch, key)

    def _on_node(self, batch: Batch, key: str) -> list[Any]:
        """The batch on the master the slot map names; a master that moved or cannot be
        reached makes the client reload the map, so the next call finds the one that
        took over."""
        node = self.client.get_node_from_key(key)
        try:
            return self._batch(self.client.get_redis_connection(node), batch)
        except (AskError, ClusterDownError, redis.ConnectionError, redis.TimeoutError):
            self._reload_slots()
            raise

    def _reload_slots(self) -> None:
        with contextlib.suppress(redis.RedisError, RedisClusterException):
            self.client.nodes_manager.initialize()  # none answered: the next call tries

    def _call(self, call: Call) -> Any:
        execute = self.client.execute_command
        try:
            return execute(*_evalsha(call))
        except redis.exceptions.NoScriptError:
            self.client.script_load(script_source(call.script))
            return execute(*_evalsha(call))

    def begin(self, plan: Plan[T], action: str) -> Begun[T]:
        """Send ``plan``'s first round trip now, to read its replies (and run the rest of
        the plan) in ``Begun.finish``: Redis works on it while the caller does
        something else. Only script calls are sent ahead, and only on a single server; a
        cluster client, or a plan starting with a command, runs it all in ``finish``.

        Raises:
            QueueUnavailable: Redis cannot be reached.
            QueueError: redis-py refused the calls.
        """
        try:
            step = next(plan)
        except StopIteration as done:
            return Begun(self, plan, action, None, None, None, done.value)
        calls = script_calls(step)
        if calls is None or not self._direct:
            return Begun(self, plan, action, step, None, None)
        try:
            connection = self._send(calls)
        except redis.RedisError as exc:
            raise translation(self.url, action, exc) from exc
        return Begun(self, plan, action, step, calls, connection)

    def _send(self, calls: list[Call]) -> Any:
        """Send ``calls`` on a kept connection or one taken from the pool; returns it
        (``_receive`` gives it back)."""
        connection = self._take()
        try:
            commands = [_evalsha(c) for c in calls]
            connection.send_packed_command(packed_commands(connection, commands))
        except BaseException:
            connection.disconnect()
            self.client.connection_pool.release(connection)
            raise
        return connection

    def _receive(self, step: Step, calls: list[Call], connection: Any) -> Any:
        """The replies of ``calls`` sent on ``connection`` (then kept or back in the
        pool), those that met ``NOSCRIPT`` run again once their script is loaded."""
        replies: list[Any] = []
        read = False
        try:
            for _ in calls:
                try:
                    replies.append(connection.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
            read = True
        finally:
            if read and len(self._kept) < self._room:
                self._kept.append(connection)
            else:  # redis-py disconnected it on a socket error
                self.client.connection_pool.release(connection)
        replies = Runner._mended(self.client, calls, replies)
        return replies if isinstance(step, Batch) else replies[0]

    def _take(self) -> Any:
        """A kept connection, ready to send (as the pool makes sure: one the server
        closed, or that holds unread data, is connected afresh), else the pool's."""
        pid = os.getpid()
        if pid != self._pid:  # forked: the parent's sockets are not ours (nor kept here)
            self._kept, self._pid = [], pid
        elif self._kept:
            try:
                connection = self._kept.pop()  # atomic: threads may share a queue
            except IndexError:
                pass
            else:
                try:
                    self._ready(connection)
                except BaseException:
                    connection.disconnect()
                    self.client.connection_pool.release(connection)
                    raise
                return connection
        return self.client.connection_pool.get_connection()

    @staticmethod
    def _ready(connection: Any) -> None:
        """Connect ``connection`` afresh if the server closed it or it holds unread data
        (a reply nobody read); reading the closed socket is what tells."""
        try:
            stale = connection.can_read()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            stale = True
        if stale:
            connection.disconnect()
            connection.connect()

    def close(self) -> None:
        """Give the kept connections back to the pool."""
        kept, self._kept = self._kept, []
        if os.getpid() == self._pid:
            for connection in kept:
                self.client.connection_pool.release(connection)

    @staticmethod
    def _batch(client: Any, batch: Batch) -> list[Any]:
        """One pipeline; steps that met ``NOSCRIPT`` run again once their script is loaded
        (those never ran; a ``WAIT`` runs again after them), the first other error is
        raised."""
        return Runner._mended(client, batch.steps, Runner._pipeline(client, batch.steps))

    @staticmethod
    def _mended(
        client: Any, all_steps: Sequence[Call | Command | Wait], replies: list[Any]
    ) -> list[Any]:
        """``replies`` of ``all_steps`` with those that met ``NOSCRIPT`` run again."""
        missing = [
            i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)
        ]
        if missing:
            missing += [i for i, s in enumerate(all_steps) if isinstance(s, Wait)]
            steps = [all_steps[i] for i in missing]
            for name in {step.script for step in steps if isinstance(step, Call)}:
                client.script_load(script_source(name))
            again = Runner._pipeline(client, steps)
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    @staticmethod
    def _pipeline(client: Any, steps: Sequence[Call | Command | Wait]) -> list[Any]:
        if not steps:
            return []
        pipe = client.pipeline(transaction=False)
        for step in steps:
            if isinstance(step, Call):
                pipe.execute_command(*_evalsha(step))
            elif isinstance(step, Wait):
                pipe.incr(step.key)  # a write of its own first (see replication.py)
                pipe.execute_command("WAIT", step.replicas, step.timeout_ms)
            else:
                getattr(pipe, step.method)(*step.args)
        return step_replies(steps, pipe.execute(raise_on_error=False))


def kept_room(pool: Any) -> int:
    """How many connections a runner may keep out of ``pool``: ``KEPT_CONNECTIONS``, and
    never more than a quarter of its limit, so the pool keeps connections for the calls
    that go through it (a ``max_connections`` under 4 keeps none)."""
    return min(KEPT_CONNECTIONS, int(getattr(pool, "max_connections", 0) or 0) // 4)


def script_calls(step: Step) -> list[Call] | None:
    """The script calls of ``step``, or None if it holds anything else."""
    if isinstance(step, Call):
        return [step]
    if isinstance(step, Command):
        return None
    calls = [s for s in step.steps if isinstance(s, Call)]
    return calls if len(calls) == len(step.steps) else None


def packed_commands(connection: Any, commands: list[tuple[Any, ...]]) -> Any:
    """The commands in Redis' wire form: hiredis' packer straight away when it is there
    (redis-py's own wraps it in a loop over every argument); our arguments are str,
    bytes and int, never the buffers that loop converts."""
    if _pack_command is None:
        return connection.pack_commands(commands)
    try:
        return [b"".join([_pack_command(command) for command in commands])]
    except TypeError as exc:  # an argument of another type: refused as redis-py does
        raise redis.DataError(str(exc)) from exc


def _evalsha(call: Call) -> tuple[Any, ...]:
    return ("EVALSHA", script_sha(call.script), len(call.keys), *call.keys, *call.args)


class Begun(Generic[T]):
    """A plan whose first round trip was sent by ``Runner.begin``; ``finish`` reads it.

    The connection it was sent on stays out of the pool until then; ``finish`` must be
    called (every read has the client's socket timeout).
    """

    def __init__(
        self,
        runner: Runner,
        plan: Plan[T],
        action: str,
        step: Step | None,
        calls: list[Call] | None,
        connection: Any,
        result: Any = None,
    ) -> None:
        self._runner, self._plan, self._action = runner, plan, action
        self._step, self._calls, self._connection, self._result = step, calls, connection, result

    def finish(self) -> T:
        """The plan's result: its first replies read, the rest of it run.

        Raises:
            QueueUnavailable: Redis cannot be reached or did not answer in time.
            QueueError: Redis refused a command.
        """
        runner, step = self._runner, self._step
        if step is None:
            done: T = self._result
            return done
        self._step = None
        try:
            reply = runner._step(step) if self._connection is None else self._read(step)
            while True:
                step = self._plan.send(reply)
                reply = runner._step(step)
        except StopIteration as stopped:
            result: T = stopped.value
            return result
        except (redis.RedisError, RedisClusterException) as exc:
            raise translation(runner.url, self._action, exc) from exc

    def _read(self, step: Step) -> Any:
        connection, self._connection = self._connection, None
        return self._runner._receive(step, self._calls or [], connection)
