"""An asyncio service that queues work and runs it, ten at a time, with a sync producer
beside it on the same queue.

    python examples/aio_redis_worker.py

Uses ``$ZEVENTS_REDIS_URL`` when it is set; otherwise it starts a throwaway
``redis-server`` and stops it at the end. A sync ``zevents.redis.RedisQueue`` sends
ten ``thumbnail.make`` events and the async one ten more; an async ``Worker`` with
``concurrency=10`` runs them (each receiver awaits a 0.2 s "download"), the one for
image 13 fails once and succeeds on its retry, and the script prints what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from zevents import Bus
from zevents.aio.redis import RedisQueue, Worker, current
from zevents.redis import RedisQueue as SyncQueue
from zevents.redis import RedisServer, RetryPolicy


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    url = os.environ.get("ZEVENTS_REDIS_URL")
    if url:
        yield url
        return
    with RedisServer() as server:
        yield server.url


async def main(url: str) -> None:
    bus = Bus()
    done: list[int] = []
    running = {"now": 0, "most": 0}

    @bus.on("thumbnail.make")
    async def make_thumbnail(event: str, payload: dict[str, Any]) -> None:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        try:
            await asyncio.sleep(0.2)  # fetching the image, say
            if payload["image"] == 13 and current().attempt == 1:
                raise ConnectionError("image store timed out")
            done.append(payload["image"])
        finally:
            running["now"] -= 1

    with SyncQueue("thumbnails", url) as sync:  # a sync producer (a web app, a script)
        sync.send_many([("thumbnail.make", {"image": n}) for n in range(10)])
    async with RedisQueue("thumbnails", url) as queue:
        await asyncio.gather(*(queue.send("thumbnail.make", {"image": n}) for n in range(10, 20)))
        policy = RetryPolicy(max_attempts=3, base=0.1)
        worker = Worker(queue, bus, concurrency=10, retry=policy, max_messages=21)
        started = time.perf_counter()
        await worker.run()
        took = time.perf_counter() - started
        stats = await queue.stats()
    print(f"{len(done)} thumbnails made, at most {running['most']} at once")
    print(f"image 13 made on its retry: {13 in done}; failed: {stats['failed']}")
    print(f"20 images of 0.2 s each took {took:.1f} s, not 4 s")


if __name__ == "__main__":
    with redis_url() as url:
        asyncio.run(main(url))
