"""7. asyncio end-to-end events/s: zevents.aio against hand-written zmq.asyncio.

zevents: ``await listener.send`` on a ``zevents.aio.EventListener`` (PUSH) in process A
→ ``zevents.aio.EventService`` (PULL) in process B → one receiver on B's bus. Baseline:
PUSH/PULL on ``zmq.asyncio`` written by hand doing the same work (orjson encode, the
two frames in one ``send_multipart``, ``await recv_multipart()``, decode of name and
payload, a blinker send to one receiver). The sync path (``zevents.EventListener.send``
→ ``zevents.EventService``) runs in the same rounds, for reference.

Each pair of processes stays up for every round (the sender sends one round's events
each time it is told to ``go``); the rate is timed in B over ``count`` events after
``warmup`` events.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from benchmarks.harness import (
    BODY,
    EVENT,
    Child,
    Figure,
    Rounds,
    Settings,
    alternate,
    children,
    endpoints,
    ready,
    short_tempdir,
    standing_round,
)

NAME = "aio"
IMPLS = ("aio", "zmq.asyncio", "sync")


async def receive_aio(endpoint: str, rounds: Rounds) -> None:
    from zevents import Bus
    from zevents.aio import EventListener, EventService

    bus = Bus("bench")
    bus.listen(EVENT, lambda event, body: rounds.hit())
    service = EventService(bus).listen(EventListener(bind=endpoint, linger=0))
    _ = service.listeners[0].socket  # bind before saying ready
    ready()
    await service.run()


async def receive_baseline(endpoint: str, rounds: Rounds) -> None:
    import blinker
    import orjson
    import zmq
    import zmq.asyncio

    signal = blinker.Namespace().signal(EVENT)

    def receiver(event: str, payload: Any = None) -> None:
        rounds.hit()

    signal.connect(receiver)
    sock = zmq.asyncio.Context.instance().socket(zmq.PULL)
    sock.bind(endpoint)
    ready()
    loads = orjson.loads
    send = signal.send
    while True:
        frames = await sock.recv_multipart()
        send(frames[0].decode(), payload=loads(frames[1]))


def receive_sync(endpoint: str, rounds: Rounds) -> None:
    from zevents import Bus, EventListener, EventService

    bus = Bus("bench")
    bus.listen(EVENT, lambda event, body: rounds.hit())
    service = EventService(bus)
    service.listen(EventListener(bind=endpoint, linger=0))
    _ = service.listeners[0].socket
    ready()
    service.run()


async def _go() -> bool:
    """Wait for the next ``go`` line on stdin; False at its end."""
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return bool(line)


async def send_aio(endpoint: str, total: int) -> None:
    from zevents.aio import EventListener

    async with EventListener(connect=endpoint, sndtimeo=30000) as listener:
        send = listener.send
        ready()
        while await _go():
            for i in range(total):
                await send(EVENT, {"i": i, "body": BODY})


async def send_baseline(endpoint: str, total: int) -> None:
    import orjson
    import zmq
    import zmq.asyncio

    sock = zmq.asyncio.Context.instance().socket(zmq.PUSH)
    sock.connect(endpoint)
    send = sock.send_multipart
    dumps = orjson.dumps
    name = EVENT.encode()
    ready()
    while await _go():
        for i in range(total):
            await send([name, dumps({"i": i, "body": BODY})])


def send_sync(endpoint: str, total: int) -> None:
    from zevents import EventListener

    listener = EventListener(connect=endpoint, sndtimeo=30000)
    send = listener.send
    ready()
    for _ in sys.stdin:
        for i in range(total):
            send(EVENT, {"i": i, "body": BODY})


def run(settings: Settings) -> list[Figure]:
    """Per transport: the three pairs up at once, their rounds in turn."""
    count = settings.count(200_000, 5_000)
    warmup = settings.count(20_000, 1_000)
    transports = settings.count(("ipc", "tcp"), ("ipc",))
    figures = []
    with short_tempdir() as tmp:
        for transport in transports:
            make = endpoints(transport, tmp, "a")
            with children() as started:
                points = {impl: make() for impl in IMPLS}
                receivers = [Child(NAME, "receive", i, points[i], warmup, count) for i in IMPLS]
                senders = [Child(NAME, "send", i, points[i], warmup + count) for i in IMPLS]
                started += receivers + senders  # all at once: a PUSH may connect first
                for child in receivers + senders:
                    child.wait_ready()
                contenders = [standing_round(r, s) for r, s in zip(receivers, senders, strict=True)]
                aio, baseline, sync = alternate(contenders, settings.pairs)
            case = f"{transport}, {count:,} events"
            figures.append(
                Figure(
                    NAME,
                    case,
                    "events/s",
                    aio,
                    baseline,
                    "zmq.asyncio PUSH/PULL by hand",
                    ">= 0.85",
                )
            )
            figures.append(
                Figure(
                    NAME,
                    f"{case}, against sync",
                    "events/s",
                    aio,
                    sync,
                    "the sync path (EventListener -> EventService)",
                    note="for reference: the same events through the sync classes",
                )
            )
    return figures


def main(argv: list[str]) -> None:
    role, impl, endpoint, *numbers = argv
    args = [int(n) for n in numbers]
    if role == "receive":
        rounds = Rounds(*args)
        if impl == "sync":
            receive_sync(endpoint, rounds)
        else:
            asyncio.run((receive_aio if impl == "aio" else receive_baseline)(endpoint, rounds))
    elif impl == "sync":
        send_sync(endpoint, *args)
    else:
        asyncio.run((send_aio if impl == "aio" else send_baseline)(endpoint, *args))


if __name__ == "__main__":
    main(sys.argv[1:])
