"""9. The safe paths: confirmed sends in a window, the durable bridge, several workers.

- ``window``: ``EventListener(confirmed=True, window=1000)`` → a confirmed
  ``EventService``, against unconfirmed sends (PUSH/PULL) and against one-at-a-time
  confirmed sends (``window=1``); timed in the receiver, ipc and tcp.
- ``bridge``: a windowed confirmed listener → ``zevents bridge --confirmed`` →
  Redis, timed in the sender from the first send to the end of ``flush()`` (every event
  stored); alone, and with a ``zevents worker`` draining the same queue meanwhile.
  Against 30,000 events/s and against the fastest asyncio peer's one-at-a-time enqueue
  (taskiq, streaQ, SAQ, as ``benchmarks.aio_peers`` runs them).
- ``workers``: 1, 2 and 4 worker processes on one queue (list and stream), in
  ``benchmarks.worker_processes``; the fastest peer's, in ``benchmarks.peer_workers``.

Every process stays up for all the rounds. Usage as a child: ``python -m benchmarks.safe
receive|send|bridge|worker ...`` (see ``main``).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks import aio_peers
from benchmarks.harness import (
    BODY,
    EVENT,
    Child,
    Figure,
    Rounds,
    Settings,
    alternate,
    children,
    emit,
    endpoints,
    ready,
    short_tempdir,
    standing_round,
)

NAME = "safe"
MODES = ("window", "plain", "one")
#: The bridge's absolute target, events/s.
BRIDGE_TARGET = 30_000
_WINDOW = 1000
_DEADLINE = 300.0


def noop(event: str, payload: Any) -> None:
    """The workers' handler."""


def _listener(mode: str, **where: str) -> Any:
    from zevents import EventListener

    if mode == "plain":
        return EventListener(linger=0, sndtimeo=30000, **where)
    window = _WINDOW if mode == "window" else 1
    return EventListener(confirmed=True, window=window, linger=0, rcvtimeo=30000, **where)


def receive(mode: str, endpoint: str, warmup: int, count: int) -> None:
    from zevents import Bus, EventService

    rounds = Rounds(warmup, count)
    bus = Bus("bench")
    bus.listen(EVENT, lambda event, body: rounds.hit())
    service = EventService(bus)
    service.listen(_listener(mode, bind=endpoint))
    _ = service.listeners[0].socket  # bind before saying ready
    ready()
    service.run()


def send(mode: str, endpoint: str, total: int, timed: bool) -> None:
    """Send ``total`` events at each line on stdin; ``timed``: print their rate, from
    the first send to the end of ``flush()``."""
    listener = _listener(mode, connect=endpoint)
    if listener.wait_for_peers(60) != 1:
        raise SystemExit(f"no peer at {endpoint}")
    ready()
    for _ in sys.stdin:
        start = time.perf_counter()
        for i in range(total):
            listener.send(EVENT, {"i": i, "body": BODY})
        if mode != "plain":
            listener.flush()
        if timed:
            emit({"rate": total / (time.perf_counter() - start)})


def zevents_cli(*argv: str) -> None:
    """Run the ``zevents`` command in this process (a bridge or a worker)."""
    from zevents.cli import main as cli

    cli(list(argv))


# --- the parent side ------------------------------------------------------------------


def window(settings: Settings) -> list[Figure]:
    """Windowed confirmed against unconfirmed and one-at-a-time confirmed sends."""
    count = settings.count(200_000, 5_000)
    counts = {"window": count, "plain": count, "one": count // 20}
    figures = []
    with short_tempdir() as tmp:
        for transport in settings.count(("ipc", "tcp"), ("ipc",)):
            make = endpoints(transport, tmp, "w")
            points = {mode: make() for mode in MODES}
            with children() as started:
                receivers = [
                    Child(NAME, "receive", m, points[m], counts[m] // 10, counts[m]) for m in MODES
                ]
                total = {m: counts[m] // 10 + counts[m] for m in MODES}
                senders = [Child(NAME, "send", m, points[m], total[m], 0) for m in MODES]
                started += receivers + senders  # all at once: a sender waits for its peer
                for child in receivers + senders:
                    child.wait_ready(timeout=90)
                contenders = [standing_round(r, s) for r, s in zip(receivers, senders, strict=True)]
                windowed, plain, one = alternate(contenders, settings.pairs)
            case = f"{transport}, window {_WINDOW}, {count:,}"
            figures.append(
                Figure(NAME, case, "events/s", windowed, plain, "unconfirmed PUSH/PULL", ">= 0.5")
            )
            figures.append(
                Figure(
                    NAME,
                    f"{case}, against window 1",
                    "events/s",
                    windowed,
                    one,
                    f"confirmed one at a time ({counts['one']:,})",
                    ">= 10",
                )
            )
    return figures


def bridge(settings: Settings) -> list[Figure]:
    """The bridge alone and with a worker draining, against the peers' enqueue."""
    assert settings.redis_url is not None
    count = settings.count(100_000, 2_000)
    peer_count = settings.count(5_000, 200)
    with (
        short_tempdir() as tmp,
        aio_peers.peer_redis(settings.redis_url) as (url, version),
        children() as started,
    ):
        make = endpoints("ipc", tmp, "b")
        # Quick: SAQ alone (the fastest one at a time in the reference runs; quick to start).
        names = settings.count(aio_peers.PEERS, ("saq",))
        peers = [Child("aio_peers", peer, url) for peer in names]
        started += peers
        senders = []
        for queue in ("bridged", "drained"):
            endpoint = make()
            started.append(Child(NAME, "bridge", url, queue, endpoint))
            if queue == "drained":
                started.append(Child(NAME, "worker", url, queue))
            senders.append(Child(NAME, "send", "window", endpoint, count, 1))
        started += senders
        for child in senders:
            child.wait_ready(timeout=90)
        up = {p: c for p, c in zip(names, peers, strict=True) if not _why(p, c)}
        contenders: list[Callable[[], float]] = [lambda s=s: _ask(s) for s in senders]  # type: ignore[misc]
        # No flush between rounds: the bridges' queues live on the same server.
        one = f"one {peer_count}"
        contenders += [
            lambda c=c: aio_peers.ask(c, url, one, flush=False)["enqueue"] for c in up.values()
        ]  # type: ignore[misc]
        alone, drained, *rates = alternate(contenders, settings.pairs)
    samples = dict(zip(up, rates, strict=True))
    fastest = max(samples, key=lambda p: statistics.median(samples[p])) if samples else ""
    setting = f"{aio_peers.loop_name()}, redis-server {version}"
    figures = []
    for label, bridged in (("bridge", alone), ("bridge, worker draining", drained)):
        case = f"{label}, {count:,} events"
        figures.append(
            Figure(
                NAME,
                f"{case}, against 30k/s",
                "events/s",
                bridged,
                target=">= 1",
                ratio_override=statistics.median(bridged) / BRIDGE_TARGET,
                note=f"ratio to {BRIDGE_TARGET:,} events/s",
            )
        )
        if fastest:
            figures.append(
                Figure(
                    NAME,
                    case,
                    "events/s",
                    bridged,
                    samples[fastest],
                    f"{fastest} enqueue one at a time (fastest peer)",
                    ">= 5",
                    setting,
                )
            )
    figures.extend(
        Figure(
            NAME,
            f"{p} enqueue one at a time, {peer_count:,}",
            "msg/s",
            s,
            note=f"peer, for reference ({setting})",
            subject=p,
        )
        for p, s in samples.items()
    )
    return figures


def _why(peer: str, child: Child) -> str:
    why = aio_peers.started(child)
    if why:
        print(f"    {peer} did not start: {why}", flush=True)
    return why


def _ask(sender: Child) -> float:
    sender.command("go")
    rate: float = sender.result(timeout=_DEADLINE)["rate"]
    return rate


def run(settings: Settings) -> list[Figure]:
    """The window, the bridge, the workers and the peer's worker processes, in turn."""
    from benchmarks import peer_workers, worker_processes

    workers = worker_processes.run(settings)
    return window(settings) + bridge(settings) + workers + peer_workers.run(settings)


def main(argv: list[str]) -> None:
    role, *args = argv
    if role == "receive":
        mode, endpoint, warmup, count = args
        receive(mode, endpoint, int(warmup), int(count))
    elif role == "send":
        mode, endpoint, total, timed = args
        send(mode, endpoint, int(total), timed == "1")
    elif role == "bridge":
        url, queue, endpoint = args
        zevents_cli("bridge", "-q", "--confirmed", "--redis", url, "--queue", queue, endpoint)
    else:
        url, queue = args
        handler = "benchmarks.safe:noop"
        zevents_cli("worker", "--redis", url, "--queue", queue, "--handler", handler)


if __name__ == "__main__":
    main(sys.argv[1:])
