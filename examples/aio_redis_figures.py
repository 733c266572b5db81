"""Figures of zevents.aio.redis: async enqueue with 32 sends in flight, and an async
worker (concurrency 32) running no-op ``async def`` receivers.

Usage: python examples/aio_redis_figures.py [--tasks N] [--rounds R] [--driver D]
                                            [--redis-server PATH] [--sync] [--quick]

Each round starts from an empty queue on a redis-server of its own (no persistence, as
in the peers' figures in docs/asyncio-redis.md); prints each round and the medians.
``--sync`` also measures the sync worker on the same messages in each round: a
reference for how loaded the machine was.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from zevents.aio.redis import RedisQueue, Worker
from zevents.eventbus import Bus
from zevents.redis import RedisServer

IN_FLIGHT = 32


async def enqueue(url: str, driver: str, tasks: int) -> float:
    """Events/s of ``IN_FLIGHT`` tasks each awaiting one ``send`` after another."""
    async with RedisQueue("figures-enqueue", url, driver=driver) as queue:
        await queue.send("warm.up")
        per_task = tasks // IN_FLIGHT

        async def producer() -> None:
            for i in range(per_task):
                await queue.send("job.noop", {"i": i})

        started = time.perf_counter()
        await asyncio.gather(*(producer() for _ in range(IN_FLIGHT)))
        return per_task * IN_FLIGHT / (time.perf_counter() - started)


class Marks:
    """When the first and the last of ``count`` messages reached a receiver: the rate
    between them, as the benchmark suite measures every worker (start-up and shutdown
    left out)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.first = self.last = 0.0

    def hit(self) -> None:
        self.seen += 1
        if self.seen == 1:
            self.first = time.perf_counter()
        if self.seen == self.count:
            self.last = time.perf_counter()

    def rate(self) -> float:
        if self.seen != self.count:
            raise SystemExit(f"processed {self.seen} of {self.count}")
        return (self.count - 1) / (self.last - self.first)


async def process(url: str, driver: str, tasks: int) -> float:
    """Events/s of one async worker (concurrency 32) running ``tasks`` no-op messages."""
    async with RedisQueue("figures-process", url, driver=driver) as queue:
        for start in range(0, tasks, 10_000):
            count = min(10_000, tasks - start)
            await queue.send_many([("job.noop", {"i": i}) for i in range(count)])
        bus = Bus()
        marks = Marks(tasks)

        async def noop(event: str, payload: object) -> None:
            marks.hit()

        bus.listen("job.noop", noop)
        await Worker(queue, bus, concurrency=IN_FLIGHT, max_messages=tasks).run()
        left = (await queue.stats())["ready"]
        if any(left.values()):
            raise SystemExit(f"left {left}")
        return marks.rate()


def process_sync(url: str, driver: str, tasks: int) -> float:
    """Events/s of one sync ``zevents.redis.Worker`` draining ``tasks`` no-op messages."""
    from zevents.redis import RedisQueue as SyncQueue
    from zevents.redis import Worker as SyncWorker

    with SyncQueue("figures-sync", url, driver=driver) as queue:
        queue.send_many([("job.noop", {"i": i}) for i in range(tasks)])
        bus = Bus()
        marks = Marks(tasks)
        bus.listen("job.noop", lambda event, payload: marks.hit())
        SyncWorker(queue, bus, max_messages=tasks).run()
        return marks.rate()


async def _sync_in_thread(url: str, driver: str, tasks: int) -> float:
    return await asyncio.to_thread(process_sync, url, driver, tasks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--driver", default="list")
    parser.add_argument("--redis-server", default=None)
    parser.add_argument("--sync", action="store_true", help="the sync worker too")
    parser.add_argument("--quick", action="store_true", help="1 round of 2,000 tasks")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.rounds = 2_000, 1
    figures: dict[str, list[float]] = {"enqueue, 32 in flight": [], "worker, concurrency 32": []}
    measures = [enqueue, process]
    if args.sync:
        figures["sync worker (reference)"] = []
        measures.append(_sync_in_thread)
    for round_ in range(1, args.rounds + 1):
        for label, measure in zip(figures, measures, strict=True):
            with RedisServer(args.redis_server) as server:
                rate = asyncio.run(measure(server.url, args.driver, args.tasks))
            figures[label].append(rate)
            print(f"round {round_}: {label}: {rate:,.0f}/s", flush=True)
    for label, rates in figures.items():
        print(f"median of {len(rates)}: {label} ({args.driver}): {statistics.median(rates):,.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
