"""Queues on a real Redis Cluster: three masters, three replicas, reached by URL alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers import wait_for
from tests.redis.conftest import DRIVERS, working_a_mixed_queue
from zevents.redis import RedisQueue, queues, workers
from zevents.redis.cluster import ClusterServer


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterServer]:
    with ClusterServer() as server:
        yield server


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_driver_works_on_a_cluster_by_its_url(cluster: ClusterServer, driver: str) -> None:
    name = f"rc-{driver}"
    with RedisQueue(name, cluster.url, driver=driver, priorities=[0, 5]) as queue:
        with working_a_mixed_queue(queue, driver, 103, keep_alive=0.5):
            wait_for(lambda: [w["queues"] for w in workers(cluster.url)] == [[name]])
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
