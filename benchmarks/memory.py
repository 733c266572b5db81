"""6. Resident memory over a long run: a service receiving events, a worker processing.

The harness samples the child's RSS with psutil (every second in a full run) while it
works. The figure is the growth after warm-up: the highest sample after the first fifth
of the run over the sample at the end of that fifth. Flat means below 1.10.
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from benchmarks.harness import Child, Figure, Settings, children, short_tempdir

NAME = "memory"


def growth(samples: list[float]) -> float:
    """Peak after warm-up over the RSS at the end of warm-up."""
    warm = max(1, len(samples) // 5)
    return max(samples[warm:]) / samples[warm] if len(samples) > warm else float("nan")


def sample_until_result(child: Child, interval: float, timeout: float) -> tuple[list[float], Any]:
    """RSS samples (MB) of ``child`` every ``interval`` s until it prints its result."""
    process = psutil.Process(child.pid)
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


def service(settings: Settings) -> Figure:
    """A service receiving 1,000,000 events (200,000 in quick mode)."""
    count = settings.count(1_000_000, 200_000)
    interval = settings.count(1.0, 0.2)
    with short_tempdir() as tmp, children() as started:
        endpoint = f"ipc://{tmp}/m"
        receiver = Child("throughput", "receive", "zevents", endpoint, 1, count - 1)
        started.append(receiver)
        receiver.wait_ready()
        started.append(Child("throughput", "send", "zevents", endpoint, count + 1000))
        samples, _ = sample_until_result(receiver, interval, timeout=300)
    return Figure(
        NAME,
        f"service, {count:,} events",
        "MB RSS",
        samples,
        target="<= 1.1",
        note=f"{len(samples)} samples, every {interval} s; ratio = growth after warm-up",
        ratio_override=growth(samples),
    )


def worker(settings: Settings) -> Figure:
    """A worker processing 200,000 messages (40,000 in quick mode)."""
    from benchmarks import processing

    count = settings.count(200_000, 40_000)
    interval = settings.count(1.0, 0.2)
    assert settings.redis_url is not None
    processing.fill(settings.redis_url, "memory", "list", count)
    with children() as started:
        child = Child("processing", "zevents", settings.redis_url, "memory", "list", count)
        started.append(child)
        child.wait_ready()
        samples, _ = sample_until_result(child, interval, timeout=300)
    return Figure(
        NAME,
        f"worker, {count:,} messages",
        "MB RSS",
        samples,
        target="<= 1.1",
        note=f"{len(samples)} samples, every {interval} s; ratio = growth after warm-up",
        ratio_override=growth(samples),
    )
