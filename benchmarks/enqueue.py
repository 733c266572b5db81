"""4. Redis enqueue rates: ``queue.send`` and ``queue.send_many`` against redis-py and peers.

For each driver: ``send`` one at a time against one redis-py command per message
(``LPUSH`` for the list, sorted-set and set drivers, ``XADD`` for the stream driver);
``send_many`` in batches of 1,000 against the same command pipelined 1,000 at a time.
Then, in turn: zevents ``send`` and ``send_many`` (list driver), and, each in its own
process, RQ ``enqueue``, Dramatiq ``send`` and Celery ``delay`` of a no-op task.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import orjson
import redis

from benchmarks.harness import BODY, EVENT, Child, Figure, Settings, alternate, children
from benchmarks.peers import PEERS

NAME = "enqueue"
BATCH = 1000


def _flush(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def _body(i: int) -> bytes:
    return orjson.dumps({"event": EVENT, "payload": {"i": i, "body": BODY}})


def zevents_send(url: str, driver: str, count: int) -> float:
    """Messages/s of ``queue.send`` one at a time."""
    from zevents.redis import RedisQueue

    _flush(url)
    with RedisQueue("enqueue", url, driver=driver) as queue:
        send = queue.send
        start = time.perf_counter()
        for i in range(count):
            send(EVENT, {"i": i, "body": BODY})
        return count / (time.perf_counter() - start)


def zevents_send_many(url: str, driver: str, count: int) -> float:
    """Messages/s of ``queue.send_many`` in batches of 1,000."""
    from zevents.redis import RedisQueue

    _flush(url)
    with RedisQueue("enqueue", url, driver=driver) as queue:
        start = time.perf_counter()
        for first in range(0, count, BATCH):
            queue.send_many([(EVENT, {"i": i, "body": BODY}) for i in range(first, first + BATCH)])
        return count / (time.perf_counter() - start)


def redis_one(url: str, driver: str, count: int) -> float:
    """Messages/s of one LPUSH (XADD for streams) per message."""
    _flush(url)
    client = redis.Redis.from_url(url)
    try:
        start = time.perf_counter()
        if driver == "stream":
            for i in range(count):
                client.xadd("enqueue", {"body": _body(i)})
        else:
            for i in range(count):
                client.lpush("enqueue", _body(i))
        return count / (time.perf_counter() - start)
    finally:
        client.close()


def redis_pipelined(url: str, driver: str, count: int) -> float:
    """Messages/s of LPUSH (XADD) pipelined 1,000 at a time."""
    _flush(url)
    client = redis.Redis.from_url(url)
    try:
        start = time.perf_counter()
        for first in range(0, count, BATCH):
            pipe = client.pipeline(transaction=False)
            if driver == "stream":
                for i in range(first, first + BATCH):
                    pipe.xadd("enqueue", {"body": _body(i)})
            else:
                for i in range(first, first + BATCH):
                    pipe.lpush("enqueue", _body(i))
            pipe.execute()
        return count / (time.perf_counter() - start)
    finally:
        client.close()


def in_child(action: str, who: str, url: str, count: int) -> float:
    """Messages/s of one peer's enqueue run in its own process."""
    _flush(url)
    with children() as started:
        child = Child("peers", action, who, url, "bench", count)
        started.append(child)
        child.wait_ready(timeout=60)
        rate: float = child.result(timeout=300)["rate"]
        return rate


def run(settings: Settings) -> list[Figure]:
    """Per driver against redis-py, then against the peers."""
    assert settings.redis_url is not None
    url = settings.redis_url
    one = settings.count(10_000, 1_000)
    many = settings.count(100_000, 10_000)
    drivers = settings.count(("list", "sorted-set", "stream", "set"), ("list", "stream"))
    figures = []
    for driver in drivers:
        command = "XADD" if driver == "stream" else "LPUSH"
        z, b = alternate(
            [lambda d=driver: zevents_send(url, d, one), lambda d=driver: redis_one(url, d, one)],  # type: ignore[misc]
            settings.pairs,
        )
        figures.append(
            Figure(
                NAME,
                f"send, {driver}, {one:,} msgs",
                "msg/s",
                z,
                b,
                f"redis-py {command} one at a time",
                ">= 0.8",
            )
        )
        z, b = alternate(
            [
                lambda d=driver: zevents_send_many(url, d, many),  # type: ignore[misc]
                lambda d=driver: redis_pipelined(url, d, many),  # type: ignore[misc]
            ],
            settings.pairs,
        )
        figures.append(
            Figure(
                NAME,
                f"send_many x1000, {driver}, {many:,} msgs",
                "msg/s",
                z,
                b,
                f"redis-py {command} pipelined x1000",
                ">= 0.6",
            )
        )
    figures.extend(against_peers(settings))
    return figures


def against_peers(settings: Settings) -> list[Figure]:
    """zevents (list driver, here), a bare ``LPUSH`` and the three peers (each in its own
    process), in turn: the ``LPUSH`` line is what one round trip per message allows
    against the same peer in the same rounds."""
    assert settings.redis_url is not None
    url = settings.redis_url
    count = settings.count(5_000, 1_000)
    contenders: list[Callable[[], float]] = [
        lambda: zevents_send(url, "list", count),
        lambda: zevents_send_many(url, "list", count),
        lambda: redis_one(url, "list", count),
    ]
    contenders += [lambda p=peer: in_child("enqueue", p, url, count) for peer in PEERS]  # type: ignore[misc]
    send, send_many, bare, *peers = alternate(contenders, settings.pairs)
    figures = [
        Figure(
            NAME,
            f"{peer} enqueue, {count:,} msgs",
            "msg/s",
            samples,
            note="peer, for reference",
            subject=peer,
        )
        for peer, samples in zip(PEERS, peers, strict=False)
    ]
    fastest = max(range(len(PEERS)), key=lambda i: statistics.median(peers[i]))
    figures.insert(
        0,
        Figure(
            NAME,
            f"redis-py LPUSH one at a time vs fastest peer, {count:,} msgs",
            "msg/s",
            bare,
            peers[fastest],
            f"{PEERS[fastest]} (fastest peer)",
            note="the ceiling of one round trip per message",
            subject="redis-py LPUSH",
        ),
    )
    for label, samples in (("send", send), ("send_many x1000", send_many)):
        figures.insert(
            0,
            Figure(
                NAME,
                f"{label} vs fastest peer, {count:,} msgs",
                "msg/s",
                samples,
                peers[fastest],
                f"{PEERS[fastest]} (fastest peer)",
                ">= 3",
            ),
        )
    return figures
