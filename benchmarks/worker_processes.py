"""Several zevents worker processes on one queue: 1, 2 and 4 of them (list and stream).

A round queues ``count`` messages with ``send_many`` first, then starts the group's
processes (``Worker`` with a no-op receiver, what ``zevents worker`` runs) and times
them from the first message handled, in any process, to the last; every process counts
the messages it handled, and a round that handled one twice or lost one says so in the
figure's note. Queued beforehand, because one worker takes messages faster than one
process queues them: timed while the queue fills, a round would measure the producer.
The processes start together; the first to take starts the clock, so a process that
starts later counts against the group (tens of ms in a round of about a second).

Usage as a child: ``python -m benchmarks.worker_processes work URL QUEUE``, then a
``report`` line on stdin once the queue is drained.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import redis

from benchmarks.harness import (
    EVENT,
    Child,
    Figure,
    Settings,
    alternate,
    batches,
    children,
    emit,
    messages,
    ready,
)

NAME = "safe"
_DEADLINE = 300.0


def work(url: str, queue: str) -> None:
    """One worker process: work until the ``report`` line, then print what it handled
    (first and last, on the machine's monotonic clock; how many)."""
    from zevents import Bus
    from zevents.redis import RedisQueue, Worker

    marks: dict[str, float] = {"first": 0.0, "last": 0.0, "seen": 0}

    def receiver(event: str, payload: Any) -> None:
        now = time.monotonic()
        if not marks["seen"]:
            marks["first"] = now
        marks["last"] = now
        marks["seen"] += 1

    bus = Bus("bench")
    bus.listen(EVENT, receiver)
    with RedisQueue(queue, url) as q:
        worker = Worker(q, bus)

        def until_report() -> None:
            sys.stdin.readline()
            worker.stop()

        threading.Thread(target=until_report, daemon=True).start()
        ready()
        worker.run()
    emit(marks)


def one_round(url: str, queue: str, driver: str, n: int, count: int) -> tuple[float, int]:
    """Messages/s of ``n`` worker processes over ``count`` queued messages, and how many
    they handled in all."""
    from zevents.redis import RedisQueue

    with RedisQueue(queue, url, driver=driver) as q:
        for batch in batches(count):
            q.send_many(messages(batch))
        with children() as group:
            group += [Child("worker_processes", "work", url, queue) for _ in range(n)]
            deadline = time.monotonic() + _DEADLINE
            while True:
                stats = q.stats()
                if not any(stats["ready"].values()) and not stats["processing"]:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{queue}: not drained in {_DEADLINE} s: {stats}")
                time.sleep(0.02)
            reports = []
            for child in group:
                child.command("report")
                reports.append(child.result(timeout=30))
    busy = [r for r in reports if r["seen"]]
    took = max(r["last"] for r in busy) - min(r["first"] for r in busy)
    return count / took, sum(int(r["seen"]) for r in reports)


def run(settings: Settings) -> list[Figure]:
    """1, 2 and 4 processes in turn, each group on a queue of its own, per driver."""
    assert settings.redis_url is not None
    url = settings.redis_url
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    count = settings.count(200_000, 2_000)
    sizes = settings.count((1, 2, 4), (1, 2))
    figures = []
    for driver in settings.count(("list", "stream"), ("list",)):
        handled: dict[int, list[int]] = {n: [] for n in sizes}

        def contender(n: int, d: str = driver, counts: dict[int, list[int]] = handled) -> float:
            rate, seen = one_round(url, f"w{n}-{d}", d, n, count)
            counts[n].append(seen)
            return rate

        one, *more = alternate([lambda n=n: contender(n) for n in sizes], settings.pairs)  # type: ignore[misc]
        case = f"{driver}, {count:,} msgs queued"
        for n, samples in zip(sizes[1:], more, strict=True):
            counted = _counted(handled[n] + handled[1], count)
            figures.append(
                Figure(
                    NAME,
                    f"{n} workers vs 1, {case}",
                    "msg/s",
                    samples,
                    one,
                    "1 worker",
                    ">= 1.5" if n == 2 else "",
                    ("" if n == 2 else "for reference (2 cores); ") + counted,
                )
            )
    return figures


def _counted(seen: list[int], count: int) -> str:
    """What the rounds handled: each message once, or how many were not."""
    off = [s for s in seen if s != count]
    if not off:
        return f"every round handled each of the {count:,} messages once"
    return f"rounds that did not handle {count:,}: {off}"


def main(argv: list[str]) -> None:
    role, url, queue = argv
    if role != "work":
        raise SystemExit(f"unknown role {role!r}")
    work(url, queue)


if __name__ == "__main__":
    main(sys.argv[1:])
