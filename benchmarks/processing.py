"""5. Redis processing: one worker process, a no-op receiver, messages queued beforehand.

zevents' ``Worker`` (list and stream drivers; a message is acknowledged only after its
receiver returned) against RQ (``SimpleWorker``, burst), Dramatiq (one process, one
thread) and Celery (solo pool). Every side is timed inside its worker process from the
first message handled to the last, so start-up costs are left out alike.

Usage as a child: ``python -m benchmarks.processing zevents URL QUEUE DRIVER COUNT``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
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
)
from benchmarks.harness import ready as say_ready
from benchmarks.peers import PEERS

NAME = "processing"
_BATCH = 1000


def fill(url: str, queue: str, driver: str, count: int) -> None:
    """Empty the database, then queue ``count`` messages with ``send_many``."""
    from zevents.redis import RedisQueue

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    with RedisQueue(queue, url, driver=driver) as q:
        for batch in batches(count, _BATCH):
            q.send_many(messages(batch))


def work_zevents(url: str, queue: str, driver: str, count: int) -> None:
    from zevents import Bus
    from zevents.redis import RedisQueue, Worker

    bus = Bus("bench")
    marks: list[float] = []
    seen = 0

    def receiver(event: str, payload: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == 1 or seen == count:
            marks.append(time.monotonic())

    bus.listen(EVENT, receiver)
    with RedisQueue(queue, url, driver=driver) as q:
        worker = Worker(q, bus, max_messages=count)
        say_ready()
        worker.run()
    emit({"rate": (count - 1) / (marks[1] - marks[0])})


def zevents_round(url: str, driver: str, count: int) -> float:
    """Messages/s of one zevents worker process over ``count`` queued messages."""
    fill(url, "bench", driver, count)
    with children() as started:
        child = Child("processing", "zevents", url, "bench", driver, count)
        started.append(child)
        rate: float = child.result(timeout=300)["rate"]
        return rate


def peer_round(peer: str, url: str, count: int) -> float:
    """Messages/s of one peer worker process over ``count`` jobs it queued itself."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    with children() as started:
        worker = Child("peers", "fill-work", peer, url, "bench", count)
        started.append(worker)
        worker.result(timeout=300)  # the enqueue rate
        rate: float = worker.result(timeout=600)["rate"]
        return rate


def run(settings: Settings) -> list[Figure]:
    """zevents alone at full count per driver, then zevents and the peers in turn."""
    assert settings.redis_url is not None
    url = settings.redis_url
    count = settings.count(50_000, 5_000)
    figures = []
    # zevents at the count, for both drivers in turn (no baseline).
    lists, streams = alternate(
        [lambda: zevents_round(url, "list", count), lambda: zevents_round(url, "stream", count)],
        settings.pairs,
    )
    for driver, samples in (("list", lists), ("stream", streams)):
        figures.append(Figure(NAME, f"{driver}, {count:,} msgs", "msg/s", samples))
    # Peers do a few hundred jobs a second: fewer messages, the same for every side.
    small = settings.count(3_000, 200)
    contenders: list[Callable[[], float]] = [
        lambda: zevents_round(url, "list", small),
        lambda: zevents_round(url, "stream", small),
    ]
    contenders += [lambda p=peer: peer_round(p, url, small) for peer in PEERS]  # type: ignore[misc]
    z_list, z_stream, *peers = alternate(contenders, settings.pairs)
    fastest = max(range(len(PEERS)), key=lambda i: statistics.median(peers[i]))
    for driver, samples in (("list", z_list), ("stream", z_stream)):
        figures.append(
            Figure(
                NAME,
                f"{driver} vs fastest peer, {small:,} msgs",
                "msg/s",
                samples,
                peers[fastest],
                f"{PEERS[fastest]} (fastest peer)",
                ">= 10",
            )
        )
    figures.extend(
        Figure(
            NAME,
            f"{peer} worker, {small:,} msgs",
            "msg/s",
            samples,
            note="peer, for reference",
            subject=peer,
        )
        for peer, samples in zip(PEERS, peers, strict=False)
    )
    return figures


def main(argv: list[str]) -> None:
    impl, url, queue, driver, count = argv
    assert impl == "zevents"
    work_zevents(url, queue, driver, int(count))


if __name__ == "__main__":
    main(sys.argv[1:])
