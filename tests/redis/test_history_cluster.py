"""The history operations on a Redis Cluster: purge, archive, restore, replay and
finished records stay in the queue's slot (no CROSSSLOT)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from tests.redis.conftest import DRIVERS, wait_for
from zevents.eventbus import Bus
from zevents.redis import JsonLinesArchive, RedisQueue, RedisServer, Worker


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisServer]:
    with RedisServer(cluster=True) as server:
        yield server


@pytest.mark.parametrize("driver", DRIVERS)
def test_history_operations_work_on_a_cluster(
    cluster: RedisServer, tmp_path: Path, driver: str
) -> None:
    client = RedisCluster(host="127.0.0.1", port=cluster.port)
    try:
        queue = RedisQueue(f"h-{driver}", driver=driver, client=client, keep_finished="1d")
        queue.send_many([("x", {"n": n}) for n in range(3)])
        worker = Worker(queue, Bus(), max_messages=3)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        wait_for(lambda: len(queue.finished()) == 3)
        thread.join(10)
        assert queue.clear_finished() == 3
        for key in ("a", "b"):
            queue.send("x", {key: 1}, identifier="o")
        store = JsonLinesArchive(tmp_path)
        assert queue.purge("1 week").unacknowledged == 0
        assert queue.archive("0s", force=True, store=store).unacknowledged == 2
        assert queue.replay("o", store=store) == {"a": 1, "b": 1}
        assert len(queue.restore(store=store)) == 2
        assert queue.purge("0s", force=True).unacknowledged == 2
    finally:
        client.close()
