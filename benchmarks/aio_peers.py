"""8. The asyncio queues side by side: zevents.aio against taskiq, streaQ and SAQ.

Each contender runs in a process of its own that stays up for every round (so imports
and start-up are paid once), and each round uses a fresh queue. A round enqueues
``count`` no-op tasks from 32 coroutines at once (32 in flight), then one worker with
32 in flight runs them all, timed inside the worker from the first task run to the last.
The settings are those of the peers' own benchmarks (streaQ's ``benchmarks/bench_*.py``):

- taskiq: ``RedisStreamBroker(url, xread_count=32)`` with
  ``RedisAsyncResultBackend(url, result_ex_time=1)``; the receiver runs in the process
  with ``max_async_tasks=32, max_prefetch=32`` (what ``taskiq worker --workers 1
  --max-async-tasks 32 --max-prefetch 32`` runs in its one worker process).
- streaQ: ``Worker(concurrency=32)``, ``coredis.Config.optimized = True``, burst.
- SAQ: ``Worker(concurrency=32, burst=True, dequeue_timeout=1)``.
- zevents: ``zevents.aio.redis.RedisQueue.send`` and ``Worker(concurrency=32)``.

Every side runs on uvloop when it is installed, else on asyncio's own loop. A peer whose
process does not start is reported as a line saying so.

Usage as a child: ``python -m benchmarks.aio_peers PEER URL``, then lines on stdin:
``round N`` (enqueue 32 in flight, then work) or ``one N`` (enqueue one at a time).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from benchmarks.harness import (
    BODY,
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

NAME = "aio_peers"
IN_FLIGHT = 32
PEERS = ("taskiq", "taskiq-bare", "streaq", "saq")
ZEVENTS = ("zevents list", "zevents stream")
#: The sync worker, one message at a time (worker figures only).
SYNC = ("zevents-sync list", "zevents-sync stream")
_DEADLINE = 600.0
_serial = itertools.count()


def loop_name() -> str:
    """The event loop every side runs on."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_loop(main: Coroutine[Any, Any, dict[str, float]]) -> dict[str, float]:
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def _server_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, timeout=10, check=False)
    word = next((w for w in out.stdout.decode().split() if w.startswith("v=")), "v=0")
    return tuple(int(n) for n in word[2:].split(".") if n.isdigit())


@contextmanager
def peer_redis(fallback_url: str) -> Iterator[tuple[str, str]]:
    """A redis-server of its own from the newest Redis >= 7 on ``PATH`` (streaQ needs
    ``FUNCTION``), with its version; else the suite's server (``fallback_url``)."""
    from zevents.redis import RedisServer

    found = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        binary = os.path.join(directory, "redis-server")
        if os.access(binary, os.X_OK):
            found.append((_server_version(binary), binary))
    newest = max(found, default=((0,), ""))
    if newest[0] < (7,):
        yield fallback_url, "the suite's"
        return
    with RedisServer(newest[1]) as server:
        yield server.url, ".".join(map(str, newest[0]))


class Marks:
    """When the first and the ``count``-th task ran; set ``done`` at the last."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.first = self.last = 0.0
        self.done = asyncio.Event()

    def hit(self) -> None:
        self.seen += 1
        if self.seen == 1:
            self.first = time.perf_counter()
        if self.seen == self.count:
            self.last = time.perf_counter()
            self.done.set()

    def rate(self) -> float:
        return (self.count - 1) / (self.last - self.first)


async def in_flight(send: Callable[[int], Awaitable[Any]], count: int, width: int) -> float:
    """Tasks/s of ``width`` coroutines each awaiting ``send`` one after another."""
    share = count // width

    async def producer(offset: int) -> None:
        for i in range(offset, offset + share):
            await send(i)

    start = time.perf_counter()
    await asyncio.gather(*(producer(n * share) for n in range(width)))
    return share * width / (time.perf_counter() - start)


async def until_done(
    marks: Marks, running: asyncio.Task[Any], nudge: Callable[[], Awaitable[Any]] | None = None
) -> float:
    """Wait (with a deadline) for the last task, stop the worker, give the rate.

    ``nudge`` is awaited once the worker was cancelled: taskiq's receiver finishes its
    cancellation only once its pending read returned, and SAQ's waits up to a second
    for its blocked dequeue, so each is sent one more task.
    """
    waiting = asyncio.ensure_future(marks.done.wait())
    try:
        await asyncio.wait({waiting, running}, timeout=_DEADLINE, return_when="FIRST_COMPLETED")
    finally:
        for task in (waiting, running):
            task.cancel()
        if nudge is not None:
            await asyncio.sleep(0)
            await nudge()
        await asyncio.wait({running}, timeout=30)
    if not marks.done.is_set():
        raise SystemExit(f"ran {marks.seen} of {marks.count} tasks")
    return marks.rate()


# --- the contenders: each gives (enqueue rate, work rate) for one round ---------------


async def zevents_round(url: str, driver: str, count: int, width: int, work: bool) -> Any:
    from zevents.aio.redis import RedisQueue, Worker
    from zevents.eventbus import Bus

    async with RedisQueue(f"aio{next(_serial)}", url, driver=driver) as queue:
        rate = await in_flight(lambda i: queue.send(EVENT, {"i": i, "body": BODY}), count, width)
        if not work:
            return rate, 0.0
        marks = Marks(count)
        bus = Bus("bench")

        async def noop(event: str, payload: Any) -> None:
            marks.hit()

        bus.listen(EVENT, noop)
        worker = Worker(queue, bus, concurrency=IN_FLIGHT, max_messages=count)
        return rate, await until_done(marks, asyncio.create_task(worker.run()))


async def taskiq_round(
    url: str, count: int, width: int, work: bool, *, backend: bool = True
) -> Any:
    from taskiq.api import run_receiver_task
    from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

    marks = Marks(count)
    broker = RedisStreamBroker(url, queue_name=f"taskiq{next(_serial)}", xread_count=32)
    if backend:
        broker = broker.with_result_backend(RedisAsyncResultBackend(url, result_ex_time=1))

    @broker.task(task_name="noop")
    async def noop(payload: Any) -> None:
        marks.hit()

    await broker.startup()
    try:
        rate = await in_flight(lambda i: noop.kiq({"i": i, "body": BODY}), count, width)
        if not work:
            return rate, 0.0
        receiver = run_receiver_task(broker, max_async_tasks=IN_FLIGHT, max_prefetch=IN_FLIGHT)
        nudge = lambda: noop.kiq({"i": -1, "body": BODY})  # noqa: E731
        return rate, await until_done(marks, asyncio.create_task(receiver), nudge)
    finally:
        await broker.shutdown()


async def streaq_round(url: str, count: int, width: int, work: bool) -> Any:
    import coredis
    from streaq import Worker

    coredis.Config.optimized = True
    marks = Marks(count)
    worker = Worker(
        redis_url=url,
        concurrency=IN_FLIGHT,
        queue_name=f"streaq{next(_serial)}",
        handle_signals=False,
    )

    @worker.task()
    async def noop(payload: Any) -> None:
        marks.hit()

    async with worker:
        rate = await in_flight(lambda i: noop.enqueue({"i": i, "body": BODY}), count, width)
    if not work:
        return rate, 0.0
    worker.burst = True
    return rate, await until_done(marks, asyncio.create_task(worker.run_async()))


async def saq_round(url: str, count: int, width: int, work: bool) -> Any:
    from saq import Queue, Worker

    marks = Marks(count)

    async def noop(ctx: Any, *, payload: Any) -> None:
        marks.hit()

    queue = Queue.from_url(url, name=f"saq{next(_serial)}")
    await queue.connect()
    try:
        rate = await in_flight(
            lambda i: queue.enqueue("noop", payload={"i": i, "body": BODY}), count, width
        )
        if not work:
            return rate, 0.0
        # The measurement ends at the last task; a short hard deadline only keeps the
        # cancelled dequeue (a blocking read of up to dequeue_timeout) from holding the round.
        worker = Worker(
            queue,
            [("noop", noop)],
            concurrency=IN_FLIGHT,
            burst=True,
            dequeue_timeout=1,
            cancellation_hard_deadline_s=0.1,
        )
        nudge = lambda: queue.enqueue("noop", payload={"i": -1, "body": BODY})  # noqa: E731
        return rate, await until_done(marks, asyncio.create_task(worker.start()), nudge)
    finally:
        await queue.disconnect()


def sync_round(url: str, driver: str, count: int) -> tuple[float, float]:
    """The sync worker (``zevents.redis.Worker``, one message at a time) over ``count``
    messages queued with ``send_many``: (0, its rate; no enqueue figure)."""
    from zevents.eventbus import Bus
    from zevents.redis import RedisQueue, Worker

    with RedisQueue(f"sync{next(_serial)}", url, driver=driver) as queue:
        for batch in batches(count):
            queue.send_many(messages(batch))
        marks = Marks(count)
        bus = Bus("bench")
        bus.listen(EVENT, lambda event, payload: marks.hit())
        Worker(queue, bus, max_messages=count).run()
    if marks.seen != count:
        raise SystemExit(f"ran {marks.seen} of {count} tasks")
    return 0.0, marks.rate()


async def one_round(peer: str, url: str, count: int, width: int, work: bool) -> dict[str, float]:
    count -= count % width  # every producer sends as many
    if peer.startswith("zevents-sync"):
        rates: Any = sync_round(url, peer.split()[1], count)
    elif peer.startswith("zevents"):
        rates = await zevents_round(url, peer.split()[1], count, width, work)
    elif peer == "taskiq-bare":
        rates = await taskiq_round(url, count, width, work, backend=False)
    else:
        rates = await globals()[f"{peer}_round"](url, count, width, work)
    return {"enqueue": rates[0], "work": rates[1]}


# --- the parent side ------------------------------------------------------------------


def started(child: Child) -> str:
    """Empty once the contender's process said ready; else why it did not start."""
    try:
        child.wait_ready(timeout=60)
    except (TimeoutError, RuntimeError) as exc:
        child.stop()
        return str(exc).splitlines()[-1]
    return ""


def ask(child: Child, url: str, command: str, *, flush: bool = True) -> dict[str, float]:
    """One round in ``child`` (on an emptied database, with ``flush``)."""
    if flush:
        client = redis.Redis.from_url(url)
        client.flushdb()
        client.close()
    child.command(command)
    result: dict[str, float] = child.result(timeout=_DEADLINE)
    return result


def run(settings: Settings) -> list[Figure]:
    """zevents (list and stream) and the three peers, in turn, in processes of their own."""
    assert settings.redis_url is not None
    count = settings.count(20_000, 128)
    with peer_redis(settings.redis_url) as (url, version), children() as running:
        up: dict[str, Child] = {}
        names = settings.count(ZEVENTS + SYNC, ZEVENTS[:1] + SYNC[:1]) + PEERS
        running += [Child(NAME, n, url) for n in names]  # all start at once
        for name, child in zip(names, running, strict=True):
            why = started(child)
            if why:
                print(f"    {name} did not start: {why}", flush=True)
            else:
                up[name] = child
        rounds = alternate(
            [lambda c=c: ask(c, url, f"round {count}") for c in up.values()],  # type: ignore[misc]
            settings.pairs,
        )
    results = dict(zip(up, rounds, strict=True))
    setting = f"{loop_name()}, redis-server {version}"
    missing = [n for n in names if n not in up]
    note = f"{setting}; did not start: {', '.join(missing)}" if missing else setting
    figures: list[Figure] = []
    for kind, label, target in (("work", "worker", ">= 25"), ("enqueue", "enqueue", ">= 5")):
        samples = {n: [r[kind] for r in results[n]] for n in results}
        peers = [p for p in PEERS if p in samples]
        fastest = max(peers, key=lambda p: statistics.median(samples[p])) if peers else ""
        ours = ZEVENTS + SYNC if kind == "work" else ZEVENTS
        for z in (n for n in ours if n in samples):
            flight = "one at a time" if z in SYNC else "32 in flight"
            case = f"{label}, {z.split()[1]}, {flight}, {count:,}"
            if z in SYNC:
                case = f"sync {case}"
            base = samples[fastest] if fastest else []
            figures.append(
                Figure(
                    NAME,
                    case,
                    "msg/s",
                    samples[z],
                    base,
                    f"{fastest} (fastest peer)",
                    target if fastest else "",
                    note,
                )
            )
        figures.extend(
            Figure(
                NAME,
                f"{p} {label}, 32 in flight, {count:,}",
                "msg/s",
                samples[p],
                note=f"peer, for reference ({setting})",
                subject=p,
            )
            for p in peers
        )
    return figures


def main(argv: list[str]) -> None:
    *words, url = argv
    peer = " ".join(words)
    if not peer.startswith("zevents"):
        modules = {"taskiq": "taskiq_redis", "taskiq-bare": "taskiq_redis"}
        __import__(modules.get(peer, peer))
    server = redis.Redis.from_url(url).info("server")["redis_version"]
    if peer == "streaq" and int(server.split(".")[0]) < 7:
        raise SystemExit(f"streaQ needs Redis 7 or later (FUNCTION); the server is {server}")
    say_ready()
    for line in sys.stdin:
        command, number = line.split()
        width = IN_FLIGHT if command == "round" else 1
        emit(run_loop(one_round(peer, url, int(number), width, command == "round")))


if __name__ == "__main__":
    main(sys.argv[1:])
