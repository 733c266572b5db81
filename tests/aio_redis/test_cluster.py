"""The asyncio queue on a real Redis Cluster (three masters, three replicas), reached
by its ``redis+cluster://`` URL alone, and ``min_replicas`` there: ``WAIT`` runs on the
master of the queue's slot."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from tests.aio_redis.conftest import DRIVERS, eventually, run
from tests.conftest import free_tcp_port
from tests.helpers import command_calls, wait_for
from zevents.aio.redis import RedisQueue, Worker
from zevents.errors import ConfigError, QueueError, QueueUnavailable, ReplicationError
from zevents.eventbus import Bus
from zevents.redis import JsonLinesArchive
from zevents.redis import RedisQueue as SyncQueue
from zevents.redis.cluster import ClusterServer
from zevents.redis.urls import cluster_node_url


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterServer]:
    with ClusterServer() as server:
        yield server


def wait_calls(cluster: ClusterServer, port: int) -> int:
    """How many ``WAIT`` commands the node on ``port`` has run."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        return command_calls(client, "wait")
    finally:
        client.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_driver_sends_and_works_on_a_cluster_by_its_url(
    cluster: ClusterServer, driver: str
) -> None:
    name = f"arc-{driver}"
    handled: list[Any] = []

    async def scenario() -> dict[str, Any]:
        async with RedisQueue(name, cluster.url, driver=driver, priorities=[0, 5]) as queue:
            ids = [await queue.send("job", {"n": 0}, priority=5)]
            ids += await queue.send_many([("job", {"n": n}) for n in range(1, 50)])
            bus = Bus()
            bus.listen("job", lambda _event, payload: handled.append(payload["n"]))
            assert await Worker(queue, bus, concurrency=8, max_messages=50).run() == 50
            assert len(set(ids)) == 50
            return await queue.stats()

    stats = run(scenario(), timeout=60)
    assert sorted(handled) == list(range(50))
    assert (stats["processing"], stats["failed"], stats["ready"]) == (0, 0, {5: 0, 0: 0})
    with SyncQueue(name, cluster.url) as same:  # one queue, whichever side opens it
        assert same.driver_name == driver


@pytest.mark.parametrize("driver", DRIVERS)
def test_history_operations_stay_in_the_queues_slot(
    cluster: ClusterServer, tmp_path: Path, driver: str
) -> None:
    """purge, archive, replay and restore on a cluster: each plan's keys in one slot."""
    store = JsonLinesArchive(tmp_path)

    async def scenario() -> None:
        async with RedisQueue(f"hist-{driver}", cluster.url, driver=driver) as queue:
            for key in ("a", "b"):
                await queue.send("x", {key: 1}, identifier="o")
            assert (await queue.purge("1 week")).unacknowledged == 0
            assert (await queue.archive(0, force=True, store=store)).unacknowledged == 2
            assert await queue.replay("o", store=store) == {"a": 1, "b": 1}
            assert len(await queue.restore(store=store)) == 2
            assert [e.source for e in await queue.history("o", store=store)] == ["queue"] * 2
            assert (await queue.purge(0, force=True)).unacknowledged == 2

    run(scenario(), timeout=60)


def test_min_replicas_waits_on_the_master_of_the_queues_slot(cluster: ClusterServer) -> None:
    """Every replicated write's WAIT runs on the master that holds the queue, over the
    connection of its marker write, for sends, batched sends and ``send_many``; a queue
    on each of the three masters shows that no other node is asked."""
    names = {cluster.master_of(f"zevents:{{wr{n}}}:msgs"): f"wr{n}" for n in range(30)}
    assert len(names) == 3

    async def scenario(name: str) -> list[str]:
        async with RedisQueue(name, cluster.url, min_replicas=1, replica_timeout=1) as queue:
            ids = [await queue.send("x", 1)]
            ids += await queue.send_many([("x", n) for n in range(10)])
            return ids

    for master, name in sorted(names.items()):
        before = {port: wait_calls(cluster, port) for port in names}
        assert len(run(scenario(name), timeout=30)) == 11
        after = {port: wait_calls(cluster, port) for port in names}
        assert after[master] - before[master] == 2  # the send, then send_many
        assert all(after[port] == before[port] for port in names if port != master)
        with SyncQueue(name, cluster.url) as inspect:
            assert inspect.stats()["ready"] == {0: 11}


def test_more_replicas_than_the_cluster_has_raise_a_replication_error(
    cluster: ClusterServer,
) -> None:
    """Each master has one replica: asking for two is refused within the replica timeout,
    and the messages are on the master, as the error says."""

    async def scenario() -> tuple[ReplicationError, ReplicationError]:
        async with RedisQueue("wr-two", cluster.url, replica_timeout=0.2) as queue:
            with pytest.raises(ReplicationError) as one:
                await queue.send("x", 1, min_replicas=2)
            with pytest.raises(ReplicationError) as many:
                await queue.send_many([("x", 2), ("x", 3)], min_replicas=2)
            assert await queue.send("x", 4)  # the queue's own: the master's word
            assert (await queue.stats())["ready"] == {0: 4}
            return one.value, many.value

    one, many = run(scenario(), timeout=30)
    assert (one.acknowledged, one.wanted) == (1, 2)
    assert (many.acknowledged, many.wanted) == (1, 2)


def named_connections(port: int, name: str) -> int:
    """How many connections named ``name`` the node on ``port`` has open."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        return sum(1 for entry in client.client_list() if entry.get("name") == name)
    finally:
        client.close()


def test_a_cluster_client_of_ones_own_is_used_and_left_open(cluster: ClusterServer) -> None:
    """Closing the queue closes the connection it opened to the master for WAIT, and
    leaves the caller's client connected (counted on the server, by client name)."""
    master = cluster.master_of("zevents:{own-client}:msgs")
    counts: list[int] = []

    async def scenario() -> int:
        plain = cluster_node_url(cluster.url)
        client = redis.asyncio.RedisCluster.from_url(plain, socket_timeout=2, client_name="own")
        try:
            queue = RedisQueue("own-client", client=client, min_replicas=1)
            await queue.send("x", 1)
            counts.append(named_connections(master, "own"))  # the client's, and WAIT's
            await queue.aclose()
            await eventually(lambda: named_connections(master, "own") < counts[0], what="closed")
            counts.append(named_connections(master, "own"))
            return int(await client.llen("zevents:{own-client}:ready:0"))
        finally:
            await client.aclose()

    assert run(scenario(), timeout=30) == 1
    assert counts[0] >= 2
    assert counts[1] >= 1  # the caller's own connection is still there
    wait_for(lambda: named_connections(master, "own") == 0, what="the caller's closed")


def test_wait_runs_on_the_connection_of_the_marker_write(cluster: ClusterServer) -> None:
    """``WAIT`` counts the writes of its own connection: the master sees the marker's
    write and the WAIT come from one client address, right after each other (MONITOR
    on the master)."""
    name = "marked"
    master = cluster.master_of(f"zevents:{{{name}}}:msgs")
    seen: list[tuple[str, str]] = []
    watching = threading.Event()
    done = threading.Event()

    def monitor() -> None:
        client: Any = redis.Redis(host="127.0.0.1", port=master, socket_timeout=5)
        with client.monitor() as stream:
            watching.set()
            while not done.is_set():
                try:
                    command = stream.next_command()
                except redis.TimeoutError:
                    return
                words = str(command["command"]).split()
                where = f"{command['client_address']}:{command['client_port']}"
                if words and words[0].upper() == "WAIT":
                    seen.append(("WAIT", where))
                elif len(words) > 1 and words[1] == f"zevents:{{{name}}}:replicated":
                    seen.append(("marker", where))  # INCR (INCRBY from redis-py)
                if len(seen) >= 4:
                    return

    thread = threading.Thread(target=monitor, daemon=True)
    thread.start()
    assert watching.wait(10)

    async def scenario() -> None:
        async with RedisQueue(name, cluster.url, min_replicas=1) as queue:
            await queue.send("x", 1)
            await queue.send_many([("x", 2), ("x", 3)])

    try:
        run(scenario(), timeout=30)
        thread.join(10)
    finally:
        done.set()
    assert [word for word, _ in seen] == ["marker", "WAIT", "marker", "WAIT"]
    assert seen[0][1] == seen[1][1]
    assert seen[2][1] == seen[3][1]


def test_many_calls_at_once_wait_for_a_turn_instead_of_failing(cluster: ClusterServer) -> None:
    """More calls than a cluster client has connections: each waits for a turn (as a
    single server's pool waits for a connection), and all of them succeed."""

    async def scenario() -> tuple[int, int]:
        async with RedisQueue("crowd", cluster.url, min_replicas=1) as queue:
            sent = await asyncio.gather(*(queue.send("x", n, min_replicas=1) for n in range(300)))
            looked = await asyncio.gather(*(queue.unfinished(["a"]) for _ in range(300)))
            return len(set(sent)), sum(1 for found in looked if found == set())

    assert run(scenario(), timeout=60) == (300, 300)


def test_a_bad_or_unreachable_cluster_url_raises_a_zevents_error() -> None:
    async def scenario(url: str) -> None:
        async with RedisQueue("jobs", url, socket_timeout=0.5) as queue:
            await queue.send("x", 1)

    with pytest.raises(QueueError) as bad:  # redis-py refuses a database on a cluster
        run(scenario("redis+cluster://127.0.0.1:1/?db=3"))
    assert "cluster" in str(bad.value)
    with pytest.raises(QueueUnavailable):
        run(scenario(f"redis+cluster://127.0.0.1:{free_tcp_port()}"))


def test_replication_options_are_checked_at_construction() -> None:
    for options, option in [
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": 1, "replica_timeout": 5, "socket_timeout": 2}, "replica_timeout"),
    ]:
        with pytest.raises(ConfigError) as raised:
            RedisQueue("jobs", "redis://127.0.0.1:1/0", **options)  # type: ignore[arg-type]
        assert raised.value.option == option


def test_a_sends_own_min_replicas_is_checked_against_the_socket_timeout(
    cluster: ClusterServer,
) -> None:
    """WAIT may not block as long as a read may: a send's own ``min_replicas`` is
    refused as the queue's would be, before anything is written."""

    async def scenario() -> Any:
        async with RedisQueue("own-check", cluster.url, socket_timeout=0.5) as queue:
            with pytest.raises(ConfigError) as raised:
                await queue.send("x", 1, min_replicas=1)  # replica_timeout 1 s >= 0.5 s
            assert raised.value.option == "replica_timeout"
            with pytest.raises(ConfigError):
                await queue.send_many([("x", 2)], min_replicas=1)
            return (await queue.stats())["ready"]

    assert run(scenario(), timeout=30) == {0: 0}
