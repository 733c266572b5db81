"""6. Resident memory over a long run: a service receiving events, a windowed confirmed
sender, the durable bridge, and a worker processing.

- ``service``: an ``EventService`` receiving 1,000,000 events (``benchmarks.throughput``'s
  children); its RSS is sampled.
- ``windowed sender``: ``EventListener(confirmed=True, window=1000)`` sending 1,000,000
  events to a confirmed ``EventService`` (``benchmarks.safe``'s children); the sender's
  RSS is sampled.
- ``bridge``: ``zevents bridge --confirmed`` while a windowed confirmed sender pushes
  1,000,000 events through it into Redis; the bridge's RSS is sampled. Its queue has a
  name of its own, and its keys are deleted afterwards.
- ``worker``: a ``Worker`` process taking 1,000,000 messages queued beforehand.

The harness samples the process's RSS with psutil (every second in a full run, every
0.2 s in a quick one, with smaller counts) while it works. The figure is the growth
after warm-up: the highest sample after the first fifth of the run over the sample at
the end of that fifth. Flat means below 1.10.
"""

from __future__ import annotations

import time
from typing import Any

import psutil
import redis

from benchmarks.harness import Child, Figure, Settings, children, short_tempdir

NAME = "memory"
#: The bridge's queue: a name of its own, deleted after the figure.
BRIDGED = "memory-bridged"
_TIMEOUT = 600.0


def growth(samples: list[float]) -> float:
    """Peak after warm-up over the RSS at the end of warm-up."""
    warm = max(1, len(samples) // 5)
    return max(samples[warm:]) / samples[warm] if len(samples) > warm else float("nan")


def sample_until_result(
    child: Child, interval: float, timeout: float, watched: Child | None = None
) -> tuple[list[float], Any]:
    """RSS samples (MB) of ``watched`` (default: ``child``) every ``interval`` s until
    ``child`` prints its result."""
    process = psutil.Process((watched or child).pid)
    samples: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            samples.append(process.memory_info().rss / 2**20)
        except psutil.Error:
            break
        try:
            return samples, child.result(timeout=interval)
        except TimeoutError:
            continue
    raise TimeoutError(f"no result within {timeout} s")


def _interval(settings: Settings) -> float:
    return settings.count(1.0, 0.2)


def _figure(case: str, samples: list[float], interval: float) -> Figure:
    return Figure(
        NAME,
        case,
        "MB RSS",
        samples,
        target="<= 1.1",
        note=f"{len(samples)} samples, every {interval} s; ratio = growth after warm-up",
        ratio_override=growth(samples),
    )


def service(settings: Settings) -> Figure:
    """A service receiving 1,000,000 events (200,000 in quick mode)."""
    count = settings.count(1_000_000, 200_000)
    interval = _interval(settings)
    with short_tempdir() as tmp, children() as started:
        endpoint = f"ipc://{tmp}/m"
        receiver = Child("throughput", "receive", "zevents", endpoint, 1, count - 1)
        started.append(receiver)
        receiver.wait_ready()
        started.append(Child("throughput", "send", "zevents", endpoint, count + 1000))
        samples, _ = sample_until_result(receiver, interval, _TIMEOUT)
    return _figure(f"service, {count:,} events", samples, interval)


def _send_windowed(
    peer_args: tuple[object, ...], endpoint: str, count: int, interval: float, watch_peer: bool
) -> list[float]:
    """RSS samples of a windowed confirmed sender of ``count`` events to ``endpoint``
    (``watch_peer``: of its peer, ``benchmarks.safe`` with ``peer_args``), until every
    event is confirmed."""
    with children() as started:
        peer = Child("safe", *peer_args)
        sender = Child("safe", "send", "window", endpoint, count, 1)
        started += [peer, sender]  # both at once: the sender waits for its peer
        sender.wait_ready(timeout=90)
        sender.command("go")
        samples, _ = sample_until_result(sender, interval, _TIMEOUT, peer if watch_peer else None)
    return samples


def sender(settings: Settings) -> Figure:
    """A windowed confirmed sender of 1,000,000 events (100,000 in quick mode)."""
    count = settings.count(1_000_000, 100_000)
    interval = _interval(settings)
    with short_tempdir() as tmp:
        endpoint = f"ipc://{tmp}/s"
        receive = ("receive", "window", endpoint, 1, count - 1)
        samples = _send_windowed(receive, endpoint, count, interval, watch_peer=False)
    return _figure(f"windowed sender, {count:,} events", samples, interval)


def bridge(settings: Settings) -> Figure:
    """The confirmed bridge storing 1,000,000 events (60,000 in quick mode) in Redis."""
    assert settings.redis_url is not None
    url = settings.redis_url
    count = settings.count(1_000_000, 60_000)
    interval = _interval(settings)
    try:
        with short_tempdir() as tmp:
            endpoint = f"ipc://{tmp}/b"
            args = ("bridge", url, BRIDGED, endpoint)
            samples = _send_windowed(args, endpoint, count, interval, watch_peer=True)
    finally:
        drop_queue(url, BRIDGED)
    return _figure(f"bridge, {count:,} events", samples, interval)


def drop_queue(url: str, name: str) -> None:
    """Delete every key of queue ``name`` and its name in the list of queues, so later
    benchmarks find Redis as before."""
    from zevents.redis import RedisQueue
    from zevents.redis.keys import queues_key

    with RedisQueue(name, url) as queue:
        pattern = queue.keys.base + "*"
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.unlink(*keys)  # frees the million events off the server's main thread
        client.srem(queues_key(), name)
    finally:
        client.close()


def worker(settings: Settings) -> Figure:
    """A worker processing 1,000,000 messages (40,000 in quick mode)."""
    from benchmarks import processing

    count = settings.count(1_000_000, 40_000)
    interval = _interval(settings)
    assert settings.redis_url is not None
    processing.fill(settings.redis_url, "memory", "list", count)
    with children() as started:
        child = Child("processing", "zevents", settings.redis_url, "memory", "list", count)
        started.append(child)
        child.wait_ready()
        samples, _ = sample_until_result(child, interval, _TIMEOUT)
    return _figure(f"worker, {count:,} messages", samples, interval)


def run(settings: Settings) -> list[Figure]:
    """The service, the windowed sender, the bridge and the worker, one after the other."""
    return [service(settings), sender(settings), bridge(settings), worker(settings)]
