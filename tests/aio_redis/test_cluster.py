"""The asyncio queue on a real Redis Cluster (three masters, three replicas), reached
by its ``redis+cluster://`` URL alone, and ``min_replicas`` there: ``WAIT`` runs on the
master of the queue's slot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from tests.aio_redis.conftest import DRIVERS, run
from zevents.aio.redis import RedisQueue, Worker
from zevents.errors import ConfigError, ReplicationError
from zevents.eventbus import Bus
from zevents.redis import RedisQueue as SyncQueue
from zevents.redis.cluster import ClusterServer


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterServer]:
    with ClusterServer() as server:
        yield server


def wait_calls(cluster: ClusterServer, port: int) -> int:
    """How many ``WAIT`` commands the node on ``port`` has run."""
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


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


def test_a_cluster_client_of_ones_own_is_used_and_left_open(cluster: ClusterServer) -> None:
    async def scenario() -> int:
        plain = cluster.url.replace("+cluster://", "://", 1)
        client = redis.asyncio.RedisCluster.from_url(plain, socket_timeout=2)
        try:
            queue = RedisQueue("own-client", client=client, min_replicas=1)
            await queue.send("x", 1)
            await queue.aclose()
            assert await client.ping()  # still open: the caller's
            return int(await client.llen("zevents:{own-client}:ready:0"))
        finally:
            await client.aclose()

    assert run(scenario(), timeout=30) == 1


def test_replication_options_are_checked_at_construction() -> None:
    for options, option in [
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": 1, "replica_timeout": 5, "socket_timeout": 2}, "replica_timeout"),
    ]:
        with pytest.raises(ConfigError) as raised:
            RedisQueue("jobs", "redis://127.0.0.1:1/0", **options)  # type: ignore[arg-type]
        assert raised.value.option == option
