"""The asyncio queue on a real Redis Cluster whose master is killed mid-run: with
``min_replicas=1`` every send that was acknowledged is stored after the failover, the
producer meets only zevents errors while it lasts, and sends resume by themselves.

A producer task sends numbered messages, each again until it is acknowledged; the
queue's master is SIGKILLed after 500, its replica takes over, the killed node is
started again and rejoins as a replica, and the producer stops 500 messages later."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterator

import orjson
import pytest
from redis.cluster import RedisCluster

from tests.aio_redis.conftest import run
from tests.faults.conftest import Figures
from tests.faults.test_failover import key_of, new_master, rejoined
from tests.helpers import wait_for
from zevents.aio.redis import RedisQueue
from zevents.errors import QueueError
from zevents.redis.cluster import ClusterServer
from zevents.redis.urls import cluster_node_url

pytestmark = pytest.mark.faults

KILL_AFTER = 500
AFTER_REJOIN = 500


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterServer]:
    with ClusterServer(node_timeout=1000) as server:
        yield server


def stored_payloads(cluster: ClusterServer, queue: str) -> set[int]:
    """The payloads of every message body the queue holds."""
    client = RedisCluster.from_url(cluster_node_url(cluster.url))
    try:
        bodies = client.hvals(f"zevents:{{{queue}}}:msgs")
    finally:
        client.close()
    return {int(orjson.loads(body)["payload"]) for body in bodies}


def test_acknowledged_async_sends_survive_a_killed_master(
    cluster: ClusterServer, figures: Figures
) -> None:
    queue_name = "aio-failover"
    old = cluster.master_of(key_of(queue_name))
    acknowledged: list[int] = []
    refused: Counter[str] = Counter()
    timings: dict[str, float] = {}

    stop = asyncio.Event()
    at: list[float] = []  # when each send was acknowledged

    async def produce(queue: RedisQueue) -> None:
        """Send each message until it is acknowledged (a refused one is sent again)."""
        deadline = time.monotonic() + 120
        n = 0
        while not stop.is_set():
            try:
                await queue.send("fo.async", n)
            except QueueError as exc:  # anything else fails the test
                refused[type(exc).__name__] += 1
                assert time.monotonic() < deadline, f"message {n} never acknowledged"
                await asyncio.sleep(0.05)
                continue
            acknowledged.append(n)
            at.append(time.monotonic())
            n += 1

    async def fail_over() -> None:
        while len(acknowledged) < KILL_AFTER:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(cluster.kill, old)
        killed = time.monotonic()
        await asyncio.to_thread(
            wait_for, lambda: new_master(cluster, key_of(queue_name), old), 30, 0.05
        )
        timings["failover"] = time.monotonic() - killed
        await asyncio.to_thread(cluster.revive, old)
        await asyncio.to_thread(
            wait_for, lambda: rejoined(cluster, key_of(queue_name), old), 30, 0.05
        )
        timings["rejoined"] = time.monotonic() - killed
        back = len(acknowledged)
        while len(acknowledged) < back + AFTER_REJOIN:
            await asyncio.sleep(0.01)
        stop.set()

    async def scenario() -> None:
        options = {"min_replicas": 1, "replica_timeout": 1.0, "socket_timeout": 2.0}
        async with RedisQueue(queue_name, cluster.url, **options) as queue:  # type: ignore[arg-type]
            await asyncio.gather(produce(queue), fail_over())

    run(scenario(), timeout=180)
    stored = stored_payloads(cluster, queue_name)
    lost = set(acknowledged) - stored
    stall = max(b - a for a, b in itertools.pairwise(at))  # the failover, as seen
    summary = (
        f"asyncio failover: acknowledged {len(acknowledged)} sends with min_replicas=1 "
        f"({KILL_AFTER} before the kill), refused attempts {dict(refused)}, stored "
        f"{len(stored)}, lost {len(lost)}; failover {timings['failover']:.1f} s, old master "
        f"back as a replica after {timings['rejoined']:.1f} s; longest wait for one send "
        f"{stall:.1f} s"
    )
    figures(summary)
    assert acknowledged == list(range(len(acknowledged))), summary  # each in turn
    assert not lost, summary
