"""The asyncio I/O of the Redis layer (private): connections and running plans.

``AsyncRunner`` runs the plans of ``zevents.redis.protocol`` on redis-py's asyncio client
as ``zevents.redis._client.Runner`` runs them on the blocking one: Lua scripts by SHA
(loaded after ``NOSCRIPT``), commands by name, batches in one pipeline. redis-py's
errors become zevents errors through the sync side's ``translation``, so both sides
raise the same ``QueueUnavailable`` and ``QueueError`` for the same failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar, cast

import redis
import redis.asyncio
from redis.connection import HiredisRespSerializer
from redis.exceptions import AskError, ClusterDownError, RedisClusterException
from redis.utils import HIREDIS_AVAILABLE

from zevents.errors import QueueError, QueueUnavailable
from zevents.redis._client import kept_room, packed_commands, script_calls, translation
from zevents.redis.connections import resolve_redis
from zevents.redis.defaults import DEFAULT_SOCKET_TIMEOUT
from zevents.redis.embedded import embedded_url
from zevents.redis.protocol.steps import Batch, Call, Command, Plan, Step, Wait, step_replies
from zevents.redis.scripts import script_sha, script_source
from zevents.redis.urls import check_url, cluster_node_url, is_cluster, mask_url

__all__ = ["AsyncRunner", "configured", "connect", "unloaded_scripts"]

T = TypeVar("T")

# A timeout that runs in the caller's task: asyncio's own from Python 3.11.3 (the
# release from which redis-py trusts it too; before it, a task that swallowed a
# cancellation could see CancelledError for a timed-out write). Older: redis-py writes.
_timeout = getattr(asyncio, "timeout", None) if sys.version_info >= (3, 11, 3) else None


async def _write_now(connection: Any, packed: bytes | list[bytes]) -> None:
    """Write ``packed`` on ``connection`` (connected) before the loop turns.

    redis-py's ``send_packed_command`` bounds the write with ``asyncio.wait_for``, which
    on Python 3.11 runs it in a new task, a loop turn later: every other task that is
    ready runs first (the lanes of a worker ran all their waiting messages before the
    next take left, and Redis idled meanwhile). This does what it does in the caller's
    task: the health check when one is due, then the write bounded by the socket
    timeout, disconnecting on any failure and raising redis-py's errors for a timeout
    and a socket error. Where its writing method or a task-local timeout is missing
    (Python before 3.11.3), redis-py writes.
    """
    send = getattr(connection, "_send_packed_command", None)
    if send is None or _timeout is None or not connection.is_connected:
        await connection.send_packed_command(packed)
        return
    try:
        await connection.check_health()  # a PING only when one is due
        async with _timeout(connection.socket_timeout or None):
            await send([packed] if isinstance(packed, bytes) else packed)
    except TimeoutError as exc:
        _abort(connection)
        await connection.disconnect(nowait=True)
        if exc.errno is not None:  # ETIMEDOUT from the OS: the connection is dead
            raise redis.ConnectionError(f"Error while writing to socket: {exc}") from exc
        raise redis.TimeoutError("Timeout writing to socket") from exc
    except OSError as exc:
        await connection.disconnect(nowait=True)
        raise redis.ConnectionError(f"Error while writing to socket: {exc}") from exc
    except BaseException:
        await connection.disconnect(nowait=True)  # a cancellation, redis-py's own errors
        raise


def _abort(connection: Any) -> None:
    """Drop what a timed-out write left in the transport's buffer: closed without it,
    the connection would still send the rest once the server reads again, and a call
    reported as failed would run after all. The server gets part of the command, then
    the close, and drops it."""
    writer = getattr(connection, "_writer", None)
    if writer is not None:
        writer.transport.abort()


def configured(url: str | None, connection: str | None) -> str | None:
    """The URL a queue uses, checked now: ``url``; else connection ``connection``;
    else ``$ZEVENTS_REDIS_URL``, else the config file's ``[redis.default]``; None for
    the embedded Redis, which ``AsyncRunner`` starts on first use (off the event loop).

    Raises:
        ConfigError: A URL redis-py would misread, or an unknown connection.
    """
    if url:
        return check_url(url)
    found, _ = resolve_redis(connection)
    return found


#: Connections one client opens at most; a command waits for a free one (each command
#: holds one for its round trip, and Redis runs one at a time anyway).
MAX_CONNECTIONS = 64


@cache
def _hiredis_packing(base: Any) -> Any:
    """``base`` (an asyncio connection class) packing commands with hiredis, as redis-py's
    blocking connections do; its asyncio ones pack in Python, a fifth of a busy worker's
    time. hiredis is called straight away: redis-py's own wrapper loops over every
    argument first, for buffer types our commands never hold."""
    import hiredis  # there: only called when redis-py found it

    # Typed in some redis-py releases, not in others (8.2): called through Any.
    packer = cast(Any, HiredisRespSerializer)()

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        first = args[0]
        if isinstance(first, str) and " " in first:  # "SCRIPT LOAD": two words
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # buffers redis-py converts, or a type it refuses (DataError)
            packed: list[bytes] = packer.pack(*args)
            return packed

    return type(base.__name__, (base,), {"pack_command": pack_command})


def connect(url: str, *, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT) -> Any:
    """An asyncio client for ``url`` whose every call is bounded by ``socket_timeout``
    seconds, waiting as long for a free connection (no I/O until its first command); a
    ``redis.asyncio.RedisCluster`` for ``redis+cluster://``, which reads the slot map on
    its first command (it does not wait for a free connection: ``AsyncRunner`` gives
    its calls turns instead)."""
    if is_cluster(url):
        plain = cluster_node_url(url)
        try:
            return redis.asyncio.RedisCluster.from_url(
                plain,
                max_connections=MAX_CONNECTIONS,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
            )
        except ValueError as exc:
            raise QueueError(f"bad Redis URL {mask_url(url)!r}: {exc}") from exc
        except (redis.RedisError, RedisClusterException) as exc:
            raise translation(url, "connect to the cluster", exc) from exc
    try:
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=socket_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            health_check_interval=30,
        )
    except ValueError as exc:
        raise QueueError(f"bad Redis URL {mask_url(url)!r}: {exc}") from exc
    if HIREDIS_AVAILABLE:
        base: Any = pool.connection_class
        pool.connection_class = _hiredis_packing(base)
    return redis.asyncio.Redis.from_pool(pool)  # the client owns (and closes) the pool


def _evalsha(call: Call) -> tuple[Any, ...]:
    """The ``EVALSHA`` command of a script call."""
    return ("EVALSHA", script_sha(call.script), len(call.keys), *call.keys, *call.args)


def unloaded_scripts(steps: Sequence[Call | Command | Wait], replies: Sequence[Any]) -> list[int]:
    """The positions in a pipeline's ``replies`` that are ``NOSCRIPT`` errors (their step
    never ran: it runs again once its script is loaded)."""
    return [
        i
        for i, reply in enumerate(replies)
        if isinstance(reply, redis.exceptions.NoScriptError) and isinstance(steps[i], Call)
    ]


class AsyncRunner:
    """Runs plans on one redis-py asyncio client (``redis.asyncio.Redis`` or its
    ``RedisCluster``).

    Args:
        client: The client; None to make one for ``url`` on first use.
        url: Its URL (None: the embedded Redis, started on first use).
        socket_timeout: Seconds any single call may take (a client made here).
        keep: Keep the connections of script calls out of the client's pool between
            calls (only for a client of our own: one the caller shares gets every
            connection back at once). ``aclose`` gives them back.
    """

    def __init__(
        self,
        client: Any,
        url: str | None,
        *,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        keep: bool = False,
    ) -> None:
        self.client = client
        self.url = url
        self.socket_timeout = socket_timeout
        # Connections kept between script calls: taking one from redis-py's pool and
        # giving it back costs about as much as sending the call (its lock and metrics).
        self._kept: list[Any] = []
        self._keep = keep  # (at most kept_room of the pool: see zevents.redis._client)
        # On a cluster: a plain client per master that ran a WAIT (see _on_master).
        self._masters: dict[str, Any] = {}
        # A cluster client opens connections up to its limit, then fails the call: plans
        # wait here for a turn instead, as long as a call may take (see _turn).
        self._turns = asyncio.Semaphore(MAX_CONNECTIONS)

    @property
    def where(self) -> str:
        """The URL for messages (password masked)."""
        return mask_url(self.url or "the embedded Redis")

    async def ready(self) -> Any:
        """The client, made (and the embedded Redis started) if not yet done.

        Raises:
            EmbeddedRedisMissing: No URL, and the ``embedded`` extra is not installed.
            QueueUnavailable: The embedded Redis did not start.
        """
        if self.client is None:
            if self.url is None:
                # Starting it spawns and waits for a process: not on the event loop.
                self.url = await asyncio.to_thread(embedded_url)
            self.client = connect(self.url, socket_timeout=self.socket_timeout)
        return self.client

    async def run(self, plan: Plan[T], action: str) -> T:
        """Run ``plan`` to its result.

        Raises:
            QueueUnavailable: Redis cannot be reached or did not answer in time.
            QueueError: Redis refused a command.
        """
        client = self.client if self.client is not None else await self.ready()
        if isinstance(client, redis.asyncio.RedisCluster):
            await self._turn(action)
            try:
                return await self._run(client, plan, action)
            finally:
                self._turns.release()
        return await self._run(client, plan, action)

    async def _turn(self, action: str) -> None:
        """Wait for one of ``MAX_CONNECTIONS`` turns on a cluster client, at most
        ``socket_timeout`` seconds (as a single server's pool waits for a connection).

        Raises:
            QueueUnavailable: No turn came in time.
        """
        if not self._turns.locked():
            await self._turns.acquire()  # free: taken at once, no timer
            return
        try:
            await asyncio.wait_for(self._turns.acquire(), self.socket_timeout)
        except asyncio.TimeoutError:
            raise QueueUnavailable(
                f"Redis at {self.where} is unavailable ({action}): {MAX_CONNECTIONS} calls "
                f"were in flight for {self.socket_timeout:g} s"
            ) from None

    async def _run(self, client: Any, plan: Plan[T], action: str) -> T:
        try:
            step = next(plan)
            while True:
                step = plan.send(await self._step(client, step))
        except StopIteration as done:
            result: T = done.value
            return result
        except (redis.RedisError, RedisClusterException) as exc:
            raise translation(self.url or "unix://(embedded)", action, exc) from exc

    async def _step(self, client: Any, step: Step) -> Any:
        # Script calls go straight to a pooled connection on a single server (redis-py's
        # command and pipeline paths cost more than the call); a cluster routes them.
        if not isinstance(client, redis.asyncio.RedisCluster):
            calls = script_calls(step)
            if calls is not None:
                replies = await self._mended(client, calls, await self._direct(client, calls))
                return replies if isinstance(step, Batch) else replies[0]
        elif isinstance(step, Batch):
            waits = [s for s in step.steps if isinstance(s, Wait)]
            if waits:
                return await self._on_master(client, step, waits[0].key)
        if isinstance(step, Call):
            try:
                return await client.execute_command(*_evalsha(step))
            except redis.exceptions.NoScriptError:
                await client.script_load(script_source(step.script))
                return await client.execute_command(*_evalsha(step))
        if isinstance(step, Command):
            return await getattr(client, step.method)(*step.args)
        return await self._batch(client, step)

    async def _direct(self, client: Any, calls: list[Call]) -> list[Any]:
        """The replies of ``calls``, sent together on a kept connection or one taken
        from the pool (an error reply is kept in its place). A connection left mid-reply
        (a timeout, a cancellation) is closed and goes back to the pool."""
        pool = client.connection_pool
        connection = await self._take(pool)
        try:
            commands = [_evalsha(c) for c in calls]
            await _write_now(connection, packed_commands(connection, commands))
            replies: list[Any] = []
            for _ in calls:
                try:
                    replies.append(await connection.read_response())
                except redis.ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            await connection.disconnect(nowait=True)
            await pool.release(connection)
            raise
        if self._keep and len(self._kept) < kept_room(pool):
            self._kept.append(connection)
        else:
            await pool.release(connection)
        return replies

    async def _take(self, pool: Any) -> Any:
        """A kept connection, ready to send (as the pool makes sure: one the server
        closed, or that holds unread data, is connected afresh), else the pool's."""
        if not self._kept:
            return await pool.get_connection()
        connection = self._kept.pop()
        try:
            try:
                stale = await connection.can_read()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                stale = True
            if stale:
                await connection.disconnect()
                await connection.connect()
        except BaseException:
            await connection.disconnect(nowait=True)
            await pool.release(connection)
            raise
        return connection

    async def _on_master(self, client: Any, batch: Batch, key: str) -> list[Any]:
        """Run a batch that ends in ``WAIT`` on the master of ``key``'s slot, over one
        connection: ``WAIT`` counts the writes of its own connection, and a cluster
        pipeline would send it, having no key, to some other node. A slot that moved is
        tried once more on its new master (nothing was written)."""
        try:
            return await self._on_node(client, batch, key)
        except AskError:  # MovedError too
            return await self._on_node(client, batch, key)

    async def _on_node(self, client: Any, batch: Batch, key: str) -> list[Any]:
        """The batch on the master the slot map names; a master that moved or cannot be
        reached makes the client reload the map, so the next call finds the one that
        took over."""
        await client.initialize()  # the slot map (read once; a no-op after)
        node = client.get_node_from_key(key)
        master = self._masters.get(node.name)
        if master is None:  # connections made as the cluster client makes its own
            pool = redis.asyncio.BlockingConnectionPool(
                connection_class=node.connection_class,
                max_connections=MAX_CONNECTIONS,
                timeout=self.socket_timeout,
                **node.connection_kwargs,
            )
            master = self._masters[node.name] = redis.asyncio.Redis.from_pool(pool)
        try:
            return await self._batch(master, batch)
        except (AskError, ClusterDownError, redis.ConnectionError, redis.TimeoutError):
            # This node may be gone or no longer the master: forget its client, and
            # reload the slot map (none answered: the next call tries again).
            gone = self._masters.pop(node.name, None)
            if gone is not None:
                await gone.aclose()
            with contextlib.suppress(redis.RedisError, RedisClusterException):
                await client.nodes_manager.initialize()
            raise

    async def _batch(self, client: Any, batch: Batch) -> list[Any]:
        """One pipeline; steps that met ``NOSCRIPT`` run again once their script is
        loaded, the first other error is raised."""
        return await self._mended(client, batch.steps, await self._pipeline(client, batch.steps))

    async def _mended(
        self, client: Any, steps: Sequence[Call | Command | Wait], replies: list[Any]
    ) -> list[Any]:
        """``replies`` of ``steps`` with those that met ``NOSCRIPT`` run again once their
        script is loaded; the first other error is raised."""
        missing = unloaded_scripts(steps, replies)
        if missing:
            again = [steps[i] for i in missing]
            for name in {step.script for step in again if isinstance(step, Call)}:
                await client.script_load(script_source(name))
            for i, reply in zip(missing, await self._pipeline(client, again), strict=True):
                replies[i] = reply
        error = next((r for r in replies if isinstance(r, Exception)), None)
        if error is not None:
            raise error
        return replies

    @staticmethod
    async def _pipeline(client: Any, steps: Sequence[Call | Command | Wait]) -> list[Any]:
        if not steps:
            return []
        pipe = client.pipeline(transaction=False)
        for step in steps:
            if isinstance(step, Call):
                pipe.execute_command(*_evalsha(step))
            elif isinstance(step, Wait):  # one connection: a plain client's pipeline
                pipe.incr(step.key)  # a write of its own first (see replication.py)
                pipe.execute_command("WAIT", step.replicas, step.timeout_ms)
            else:
                getattr(pipe, step.method)(*step.args)
        return step_replies(steps, await pipe.execute(raise_on_error=False))

    async def aclose(self, *, client: bool = True) -> None:
        """Close the connections made here, and the client's too unless ``client`` is
        False (a client the caller gave, and closes)."""
        masters, self._masters = list(self._masters.values()), {}
        for master in masters:
            await master.aclose()
        kept, self._kept = self._kept, []
        for connection in kept:
            await self.client.connection_pool.release(connection)
        if client and self.client is not None:
            await self.client.aclose()
