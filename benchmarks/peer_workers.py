"""Worker processes of the fastest peer on one queue: 1, 2 and 4 of them.

The peer is taskiq with taskiq-redis's stream broker and no result backend (the
fastest one-worker peer of the reference runs, and the one that survives a killed
worker): ``RedisStreamBroker(url, xread_count=32)`` and, in each worker process,
``run_receiver_task(broker, max_async_tasks=32, max_prefetch=32)``, which is what
``taskiq worker --workers N`` runs in each of its N processes.

Each group of worker processes stays up for every round, on a queue of its own; a round
enqueues ``count`` no-op tasks (32 in flight) while the workers take them, and is timed
from the first task run (in any process) to the last one. Every process counts the tasks
it ran: a round that ran one twice, or lost one, says so in the figure's note (the
zevents side is ``safe.workers``). Usage as a child: ``python -m benchmarks.peer_workers
work URL QUEUE``, then ``reset`` and ``report`` lines on stdin.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from benchmarks.aio_peers import IN_FLIGHT, in_flight, loop_name
from benchmarks.harness import BODY, Child, Figure, Settings, alternate, children, emit, ready

NAME = "safe"
_DEADLINE = 300.0


def _broker(url: str, queue: str) -> Any:
    from taskiq_redis import RedisStreamBroker

    return RedisStreamBroker(url, queue_name=queue, xread_count=IN_FLIGHT)


async def work(url: str, queue: str) -> None:
    """One worker process: run tasks until stdin closes; ``reset`` forgets the counts,
    ``report`` prints them (first and last run, on the shared monotonic clock; how many)."""
    from taskiq.api import run_receiver_task

    broker = _broker(url, queue)
    marks: dict[str, float] = {"first": 0.0, "last": 0.0, "seen": 0}

    @broker.task(task_name="noop")
    async def noop(payload: Any) -> None:
        now = time.monotonic()
        if not marks["seen"]:
            marks["first"] = now
        marks["last"] = now
        marks["seen"] += 1

    await broker.startup()
    receiver = asyncio.create_task(
        run_receiver_task(broker, max_async_tasks=IN_FLIGHT, max_prefetch=IN_FLIGHT)
    )
    ready()
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        if line == "reset":
            marks.update(first=0.0, last=0.0, seen=0)
        emit(marks)
    receiver.cancel()
    await broker.shutdown()


async def _fill(url: str, queue: str, count: int) -> None:
    broker = _broker(url, queue)

    @broker.task(task_name="noop")
    async def noop(payload: Any) -> None:
        """Never run here: only its name is sent."""

    await broker.startup()
    try:
        await in_flight(lambda i: noop.kiq({"i": i, "body": BODY}), count, IN_FLIGHT)
    finally:
        await broker.shutdown()


def one_round(url: str, queue: str, group: list[Child], count: int) -> tuple[float, int]:
    """Tasks/s of ``group`` over ``count`` tasks, and how many they ran in all."""
    for child in group:
        child.command("reset")
        child.result(timeout=30)
    asyncio.run(_fill(url, queue, count))
    deadline = time.monotonic() + _DEADLINE
    seen = last_seen = -1
    while time.monotonic() < deadline:
        time.sleep(0.25)
        reports = []
        for child in group:
            child.command("report")
            reports.append(child.result(timeout=30))
        seen = sum(int(r["seen"]) for r in reports)
        if seen >= count and seen == last_seen:
            busy = [r for r in reports if r["seen"]]
            took = max(r["last"] for r in busy) - min(r["first"] for r in busy)
            return count / took, seen
        last_seen = seen
    raise TimeoutError(f"{queue}: ran {seen} of {count} tasks in {_DEADLINE} s")


def run(settings: Settings) -> list[Figure]:
    """1, 2 and 4 taskiq worker processes, each group on its own queue, in turn."""
    assert settings.redis_url is not None
    url = settings.redis_url
    count = settings.count(10_000, 200)
    count -= count % IN_FLIGHT  # every producer sends as many
    sizes = settings.count((1, 2, 4), (1, 2))
    ran: dict[int, list[int]] = {n: [] for n in sizes}
    with children() as started:
        groups = {}
        for n in sizes:
            groups[n] = [Child("peer_workers", "work", url, f"taskiq-w{n}") for _ in range(n)]
            started += groups[n]
        for child in started:
            child.wait_ready(timeout=60)

        def contender(n: int) -> float:
            rate, seen = one_round(url, f"taskiq-w{n}", groups[n], count)
            ran[n].append(seen)
            return rate

        one, *more = alternate([lambda n=n: contender(n) for n in sizes], settings.pairs)  # type: ignore[misc]
    extra = {n: [s - count for s in ran[n] if s != count] for n in sizes}
    base = f"taskiq, stream broker, no result backend, {loop_name()}"
    figures = [
        Figure(
            NAME,
            f"taskiq 1 worker process, {count:,} tasks",
            "msg/s",
            one,
            note=f"peer, for reference ({base}); {_counted(extra[1])}",
            subject="taskiq",
        )
    ]
    for n, samples in zip(sizes[1:], more, strict=True):
        figures.append(
            Figure(
                NAME,
                f"taskiq {n} worker processes vs 1, {count:,} tasks",
                "msg/s",
                samples,
                one,
                "taskiq, 1 worker process",
                note=f"peer against itself ({base}); {_counted(extra[n])}",
                subject="taskiq",
            )
        )
    return figures


def _counted(extra: list[int]) -> str:
    """What the rounds ran beyond (or short of) the tasks they queued."""
    if not extra:
        return "every task ran once"
    return "tasks run beyond those queued, by round: " + ", ".join(f"{e:+d}" for e in extra)


def main(argv: list[str]) -> None:
    role, url, queue = argv
    assert role == "work"
    asyncio.run(work(url, queue))


if __name__ == "__main__":
    main(sys.argv[1:])
