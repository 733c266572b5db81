"""Queues and workers on a Redis Cluster: every script and command stays in one slot."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from redis.cluster import RedisCluster

from tests.conftest import free_tcp_port
from tests.redis.conftest import DRIVERS, wait_for
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, RedisServer, RetryPolicy, Worker, workers


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
        queue.send("x", 1)
        queue.send("x", 2, priority=5, identifier="i", unique=True)
        queue.send("x", 3, serial_group="g", delay=0 if driver == "set" else 0.05)
        queue.send_many([("x", n) for n in (4, 5)])
        seen: list[int] = []
        bus = Bus()

        def receiver(event: str, payload: Any) -> None:
            seen.append(payload)
            if payload == 5:
                raise ValueError("five")

        bus.listen("x", receiver)
        worker = Worker(queue, bus, retry=RetryPolicy(max_attempts=1), keep_alive=0.3)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: sorted(seen) == [1, 2, 3, 4, 5] and queue.failed())
            assert workers(client=client)  # the registry works on a cluster too
        finally:
            worker.stop()
            thread.join(10)
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
