"""Bulk enqueue on asyncio: ``zevents.aio.redis.RedisQueue.send_many`` against streaQ's
``Worker.enqueue_many`` (a pipeline), the one asyncio peer with a bulk form (taskiq has
none; SAQ's ``map`` waits for the results).

Each side runs in a process of its own that stays up for every round, on the Redis ≥ 7
server of ``aio_peers``; a round queues ``count`` tasks in batches of 1,000 into a fresh
queue, timed from the first batch to the last reply. Usage as a child: ``python -m
benchmarks.peer_bulk zevents|streaq URL``, then ``bulk N`` lines on stdin.
"""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

from benchmarks import aio_peers
from benchmarks.harness import (
    BODY,
    Child,
    Figure,
    Settings,
    alternate,
    batches,
    children,
    emit,
    messages,
)
from benchmarks.harness import ready as say_ready

NAME = "aio_peers"
BATCH = 1000
_serial = itertools.count()


async def zevents_bulk(url: str, count: int) -> dict[str, float]:
    from zevents.aio.redis import RedisQueue

    async with RedisQueue(f"bulk{next(_serial)}", url) as queue:
        start = time.perf_counter()
        for batch in batches(count, BATCH):
            await queue.send_many(messages(batch))
        return {"rate": count / (time.perf_counter() - start)}


async def streaq_bulk(url: str, count: int) -> dict[str, float]:
    import coredis
    from streaq import Worker

    coredis.Config.optimized = True
    worker = Worker(redis_url=url, queue_name=f"bulk{next(_serial)}", handle_signals=False)

    @worker.task()
    async def noop(payload: Any) -> None:
        """Never run here: the round only queues."""

    async with worker:
        start = time.perf_counter()
        for batch in batches(count, BATCH):
            await worker.enqueue_many([noop.enqueue({"i": i, "body": BODY}) for i in batch])
        return {"rate": count / (time.perf_counter() - start)}


def run(settings: Settings) -> list[Figure]:
    """zevents and streaQ bulk enqueue, in turn."""
    assert settings.redis_url is not None
    count = settings.count(20_000, 2_000)
    with aio_peers.peer_redis(settings.redis_url) as (url, version), children() as running:
        sides = [Child("peer_bulk", side, url) for side in ("zevents", "streaq")]
        running += sides
        why = [aio_peers.started(child) for child in sides]
        if any(why):
            print(f"    bulk enqueue not measured: {'; '.join(w for w in why if w)}", flush=True)
            return []
        ours, theirs = alternate(
            [lambda c=c: aio_peers.ask(c, url, f"bulk {count}")["rate"] for c in sides],  # type: ignore[misc]
            settings.pairs,
        )
    setting = f"{aio_peers.loop_name()}, redis-server {version}, batches of {BATCH:,}"
    return [
        Figure(
            NAME,
            f"bulk enqueue, list, {count:,}",
            "msg/s",
            ours,
            theirs,
            "streaQ enqueue_many",
            "",
            f"send_many against the one peer with a bulk form ({setting})",
        )
    ]


def main(argv: list[str]) -> None:
    side, url = argv
    runner = zevents_bulk if side == "zevents" else streaq_bulk
    say_ready()
    for line in sys.stdin:
        _, number = line.split()
        emit(aio_peers.run_loop(runner(url, int(number))))


if __name__ == "__main__":
    main(sys.argv[1:])
