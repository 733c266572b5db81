"""2. Confirmed delivery latency, one event at a time, against a DEALER/ROUTER round trip.

zevents: ``bus.fire`` → confirmed ``EventListener`` (DEALER) → ``EventService`` (ROUTER)
→ one receiver, and the confirmation back; timed from fire to return. Baseline: the same
frames (name, payload, token; answered with ``zevents.confirmed``, token, status) written
by hand with pyzmq, orjson and a blinker send.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.harness import (
    BODY,
    EVENT,
    Child,
    Figure,
    Settings,
    children,
    emit,
    endpoints,
    ready,
    short_tempdir,
)

NAME = "latency"
_CONFIRMED = b"zevents.confirmed"
_ACK_OK = b'{"ok":true}'
_MARKER = b"\xffzv1"


def serve_zevents(endpoint: str) -> None:
    from zevents import Bus, EventListener, EventService

    bus = Bus("bench")
    service = EventService(bus)
    bus.listen(EVENT, lambda event, body: None)
    listener = EventListener(bind=endpoint, confirmed=True, linger=0)
    service.listen(listener)
    _ = service.listeners[0].socket
    ready()
    service.run()


def serve_baseline(endpoint: str) -> None:
    import blinker
    import orjson
    import zmq

    signal = blinker.Namespace().signal(EVENT)
    signal.connect(lambda event, payload=None: None)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(endpoint)
    ready()
    while True:
        address, name, data, token = sock.recv_multipart()
        signal.send(name.decode(), payload=orjson.loads(data))
        sock.send_multipart([address, _CONFIRMED, token, _ACK_OK])


def _percentiles(samples: list[int]) -> dict[str, float]:
    """p50 and p99 in µs of samples in ns."""
    ordered = sorted(samples)
    n = len(ordered)
    return {"p50": ordered[n // 2] / 1000, "p99": ordered[min(n - 1, n * 99 // 100)] / 1000}


def _commands() -> Iterator[int]:
    """Event counts the harness asks for, one per stdin line, until stdin closes."""
    for line in sys.stdin:
        yield int(line)


def send_zevents(endpoint: str) -> None:
    from zevents import Bus, EventListener

    bus = Bus("bench")
    bus.listen(EVENT, EventListener(connect=endpoint, confirmed=True, rcvtimeo=5000))
    fire = bus.fire
    clock = time.perf_counter_ns
    sent = 0
    ready()
    for count in _commands():
        samples = []
        for i in range(sent, sent + count):
            start = clock()
            result = fire(EVENT, {"i": i, "body": BODY})
            samples.append(clock() - start)
            if result[0][1] is not True:
                raise SystemExit(f"event {i} was not confirmed")
        sent += count
        emit({"ns": samples})


def send_baseline(endpoint: str) -> None:
    import orjson
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.RCVTIMEO, 5000)
    sock.connect(endpoint)
    name = EVENT.encode()
    more = zmq.SNDMORE
    clock = time.perf_counter_ns
    sent = 0
    ready()
    for count in _commands():
        samples = []
        for i in range(sent, sent + count):
            start = clock()
            token = _MARKER + i.to_bytes(8, "big")
            sock.send(name, more)
            sock.send(orjson.dumps({"i": i, "body": BODY}), more)
            sock.send(token)
            reply = sock.recv_multipart()
            samples.append(clock() - start)
            if reply[1] != token or reply[2] != _ACK_OK:
                raise SystemExit(f"event {i} was not confirmed")
        sent += count
        emit({"ns": samples})


def measure(
    transport: str, tmp: Path, settings: Settings, warmup: int, chunks: int, chunk: int
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Per-round p50/p99 of zevents and the baseline, interleaved chunk by chunk.

    Both pairs of processes stay up for the whole measurement; the two senders take
    turns every ``chunk`` events, so a burst of noise on the machine lands on both.
    """
    endpoint = endpoints(transport, tmp, "l")
    with children() as started:
        senders = []
        for impl in ("zevents", "baseline"):
            where = endpoint()
            server = Child("latency", "serve", impl, where)
            started.append(server)
            server.wait_ready()
            sender = Child("latency", "send", impl, where)
            started.append(sender)
            sender.wait_ready()
            senders.append(sender)

        def run_chunk(sender: Child, count: int) -> list[int]:
            sender.command(str(count))
            samples: list[int] = sender.result(timeout=120)["ns"]
            return samples

        for sender in senders:
            run_chunk(sender, warmup)
        rounds: list[list[dict[str, float]]] = [[], []]
        for _ in range(settings.pairs):
            pooled: list[list[int]] = [[], []]
            for _ in range(chunks):
                for side, sender in enumerate(senders):
                    pooled[side] += run_chunk(sender, chunk)
            for side in (0, 1):
                rounds[side].append(_percentiles(pooled[side]))
        return rounds[0], rounds[1]


def run(settings: Settings) -> list[Figure]:
    """Both transports; p50 and p99 of each round."""
    chunk = settings.count(1_000, 300)
    chunks = settings.count(20, 5)  # per round: 20,000 events on each side
    warmup = settings.count(1_000, 200)
    count = chunk * chunks
    figures = []
    with short_tempdir() as tmp:
        for transport in ("ipc", "tcp"):
            z, b = measure(transport, tmp, settings, warmup, chunks, chunk)
            for key, target in (("p50", "<= 1.3"), ("p99", "<= 1.5")):
                figures.append(
                    Figure(
                        NAME,
                        f"{transport} {key}, {count:,} events",
                        "µs",
                        [r[key] for r in z],
                        [r[key] for r in b],
                        "DEALER/ROUTER by hand",
                        target,
                        note=f"per round; the senders alternate every {chunk:,} events",
                    )
                )
    return figures


def main(argv: list[str]) -> None:
    role, impl, endpoint = argv
    if role == "serve":
        (serve_zevents if impl == "zevents" else serve_baseline)(endpoint)
    else:
        (send_zevents if impl == "zevents" else send_baseline)(endpoint)


if __name__ == "__main__":
    main(sys.argv[1:])
