"""Queues and workers on a Redis Cluster: every script and command stays in one slot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from tests.conftest import free_tcp_port
from tests.redis.conftest import DRIVERS, working_a_mixed_queue
from zevents.redis import RedisQueue, RedisServer, workers


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisServer]:
    with RedisServer(cluster=True) as server:
        yield server


@pytest.mark.parametrize("driver", DRIVERS)
def test_every_operation_works_on_a_cluster_without_crossslot_errors(
    cluster: RedisServer, driver: str
) -> None:
    client = RedisCluster(host="127.0.0.1", port=cluster.port)
    try:
        queue = RedisQueue(f"c-{driver}", driver=driver, client=client, priorities=[0, 5])
        with working_a_mixed_queue(queue, driver, 5, keep_alive=0.3):
            assert workers(client=client)  # the registry works on a cluster too
        assert queue.unfinished(["i"]) == set()
        assert queue.retry_failed() == 1
        assert queue.flush_failed() == 0
        assert queue.stats()["ready"] == {5: 0, 0: 1}
    finally:
        client.close()


def test_a_cluster_url_with_no_node_answering_is_unavailable_not_a_raw_error() -> None:
    from zevents.errors import QueueUnavailable
    from zevents.redis._client import connect

    port = free_tcp_port()  # nothing listens there
    with pytest.raises(QueueUnavailable, match="connect to the cluster"):
        connect(f"redis+cluster://127.0.0.1:{port}", socket_timeout=0.5)
