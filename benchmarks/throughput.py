"""1. End-to-end events/s between two processes, zevents against hand-written pyzmq.

zevents: ``bus.fire`` in process A → ``EventListener`` (PUSH) → ``EventService`` (PULL)
in process B → one receiver on B's bus. Baseline: PUSH/PULL written by hand doing the
same work (orjson encode, two frames, decode of name and payload, a blinker send to one
receiver), with ``recv_multipart`` as pyzmq documents; a "tuned" variant that receives
exactly two frames with two ``recv()`` calls is shown for reference. The rate is timed in
B, over ``count`` events after ``warmup`` events.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from benchmarks.harness import (
    BODY,
    EVENT,
    Child,
    Figure,
    Settings,
    alternate,
    children,
    emit,
    endpoints,
    ready,
    short_tempdir,
)

NAME = "throughput"
# Events sent past the measured ones: the receiver never waits on a message that a
# closing PUSH socket could drop.
_TAIL = 1000


def receive_zevents(endpoint: str, warmup: int, count: int) -> None:
    from zevents import Bus, EventListener, EventService

    bus = Bus("bench")
    service = EventService(bus)
    marks: list[float] = []
    last = warmup + count
    seen = 0

    def receiver(event: str, body: Any) -> None:
        nonlocal seen
        seen += 1
        if seen in (warmup, last):
            marks.append(time.monotonic())
            if seen == last:
                service.stop()

    bus.listen(EVENT, receiver)
    listener = EventListener(bind=endpoint, linger=0)
    service.listen(listener)
    _ = service.listeners[0].socket  # bind before saying ready
    ready()
    service.run()
    emit({"rate": count / (marks[1] - marks[0])})


def receive_baseline(endpoint: str, warmup: int, count: int, *, tuned: bool = False) -> None:
    """The hand-written receiver; ``tuned`` trusts the frame count and skips
    ``recv_multipart`` (whose RCVMORE getsockopt costs more than a receive)."""
    import blinker
    import orjson
    import zmq

    signal = blinker.Namespace().signal(EVENT)
    seen = 0

    def receiver(event: str, payload: Any = None) -> None:
        nonlocal seen
        seen += 1

    signal.connect(receiver)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.bind(endpoint)
    ready()
    loads = orjson.loads
    recv_multipart = sock.recv_multipart
    recv = sock.recv
    send = signal.send
    last = warmup + count
    start = 0.0
    while seen < last:
        if tuned:
            name = recv()
            send(name.decode(), payload=loads(recv()))
        else:
            frames = recv_multipart()
            send(frames[0].decode(), payload=loads(frames[1]))
        if seen == warmup:
            start = time.monotonic()
    emit({"rate": count / (time.monotonic() - start)})
    sock.close(linger=0)
    ctx.term()


def send_zevents(endpoint: str, total: int) -> None:
    from zevents import Bus, EventListener

    bus = Bus("bench")
    bus.listen(EVENT, EventListener(connect=endpoint, sndtimeo=30000))
    fire = bus.fire
    for i in range(total):
        fire(EVENT, {"i": i, "body": BODY})
    time.sleep(60)  # the harness ends this process once the receiver is done


def send_baseline(endpoint: str, total: int) -> None:
    import orjson
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.connect(endpoint)
    send = sock.send
    dumps = orjson.dumps
    name = EVENT.encode()
    more = zmq.SNDMORE
    for i in range(total):
        send(name, more)
        send(dumps({"i": i, "body": BODY}))
    time.sleep(60)


def one_round(impl: str, endpoint: str, warmup: int, count: int) -> float:
    """Events/s of one round of ``impl`` (``zevents`` or ``baseline``)."""
    with children() as started:
        receiver = Child("throughput", "receive", impl, endpoint, warmup, count)
        started.append(receiver)
        receiver.wait_ready()
        started.append(Child("throughput", "send", impl, endpoint, warmup + count + _TAIL))
        rate: float = receiver.result(timeout=120)["rate"]
        return rate


def run(settings: Settings) -> list[Figure]:
    """Both transports, zevents and baseline in turn."""
    count = settings.count(200_000, 30_000)
    warmup = settings.count(20_000, 5_000)
    figures = []
    with short_tempdir() as tmp:
        for transport in ("ipc", "tcp"):
            endpoint = endpoints(transport, tmp, "t")

            z, b, t = alternate(
                [
                    lambda e=endpoint: one_round("zevents", e(), warmup, count),  # type: ignore[misc]
                    lambda e=endpoint: one_round("baseline", e(), warmup, count),  # type: ignore[misc]
                    lambda e=endpoint: one_round("tuned", e(), warmup, count),  # type: ignore[misc]
                ],
                settings.pairs,
            )
            figures.append(
                Figure(
                    NAME,
                    f"{transport}, {count:,} events",
                    "events/s",
                    z,
                    b,
                    "pyzmq PUSH/PULL by hand",
                    ">= 0.85",
                )
            )
            figures.append(
                Figure(
                    NAME,
                    f"{transport}, {count:,} events, tuned",
                    "events/s",
                    z,
                    t,
                    "same, 2 recv() not recv_multipart",
                    note="for reference: a receiver that trusts the frame count",
                )
            )
    return figures


def main(argv: list[str]) -> None:
    role, impl, endpoint, *numbers = argv
    args = [int(n) for n in numbers]
    if role == "receive":
        if impl == "zevents":
            receive_zevents(endpoint, *args)
        else:
            receive_baseline(endpoint, *args, tuned=impl == "tuned")
    else:
        (send_zevents if impl == "zevents" else send_baseline)(endpoint, *args)


if __name__ == "__main__":
    main(sys.argv[1:])
