"""Queues on a real Redis Cluster: three masters, three replicas, reached by URL alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.redis.conftest import DRIVERS
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RetryPolicy, Worker, queues, workers
from zevents.redis.cluster import ClusterServer


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterServer]:
    with ClusterServer() as server:
        yield server


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_driver_works_on_a_cluster_by_its_url(cluster: ClusterServer, driver: str) -> None:
    name = f"rc-{driver}"
    with RedisQueue(name, cluster.url, driver=driver, priorities=[0, 5]) as queue:
        queue.send("x", 1)
        queue.send("x", 2, priority=5, identifier="i", unique=True)
        queue.send("x", 3, serial_group="g", delay=0 if driver == "set" else 0.05)
        queue.send_many([("x", n) for n in range(4, 104)])
        seen: list[int] = []
        bus = Bus()

        def receiver(event: str, payload: Any) -> None:
            seen.append(payload)
            if payload == 5:
                raise ValueError("five")

        bus.listen("x", receiver)
        worker = Worker(queue, bus, retry=RetryPolicy(max_attempts=1), keep_alive=0.5)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: sorted(seen) == list(range(1, 104)) and queue.failed())
            wait_for(lambda: [w["queues"] for w in workers(cluster.url)] == [[name]])
        finally:
            worker.stop()
            thread.join(10)
        stats = queue.stats()
        assert (stats["processing"], stats["failed"], stats["ready"]) == (0, 1, {5: 0, 0: 0})
        assert queue.retry_failed() == 1
        assert name in [record.name for record in queues(cluster.url)]


def test_queues_spread_over_the_masters(cluster: ClusterServer) -> None:
    """Each queue lives in one slot; different queues land on different masters."""
    masters = {cluster.master_of(f"zevents:{{q{n}}}:msgs") for n in range(30)}
    assert len(masters) == 3
    for n in range(30):
        with RedisQueue(f"q{n}", cluster.url) as queue:
            queue.send("spread", n)
    for n in range(30):
        with RedisQueue(f"q{n}", cluster.url) as queue:
            assert queue.stats()["ready"] == {0: 1}
