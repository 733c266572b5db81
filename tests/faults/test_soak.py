"""Long runs, deselected by default and kept out of CI: ``pytest -m soak``.

Sizes come from the environment (the defaults are the ones docs/guarantees.md quotes):
``ZEVENTS_SOAK_PUSH`` (1,000,000), ``ZEVENTS_SOAK_CONFIRMED`` (200,000) and
``ZEVENTS_SOAK_BRIDGE`` (200,000).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import Figures, Log, Workers, resident_kib, wait_exists
from tests.helpers import ServiceProcess, child_env
from zevents import Bus, EventListener
from zevents.events import PUSH_ERROR
from zevents.redis import RedisQueue, RedisServer

pytestmark = pytest.mark.soak

PUSH_EVENTS = int(os.environ.get("ZEVENTS_SOAK_PUSH", "1000000"))
CONFIRMED_EVENTS = int(os.environ.get("ZEVENTS_SOAK_CONFIRMED", "200000"))
BRIDGE_EVENTS = int(os.environ.get("ZEVENTS_SOAK_BRIDGE", "200000"))
BRIDGE_SCRIPT = Path(__file__).resolve().parents[1] / "redis" / "bridge_script.py"
BODY = "x" * 100


def lines_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_lines(path: Path, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while lines_in(path) < count:
        assert time.monotonic() < deadline, f"{lines_in(path):,} of {count:,} lines"
        time.sleep(0.5)


def growth(before: int, after: int) -> str:
    return f"{before // 1024} -> {after // 1024} MiB ({(after - before) * 100 / before:+.1f}%)"


@pytest.fixture
def sending() -> tuple[Bus, list[Any]]:
    bus = Bus("soak")
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda event, report: errors.append(report))
    return bus, errors


@pytest.mark.timeout(1800)
def test_a_million_events_through_push_pull_all_arrive_and_memory_stays_flat(
    short_tmp: Path, figures: Figures, sending: tuple[Bus, list[Any]]
) -> None:
    bus, errors = sending
    endpoint = f"ipc://{short_tmp}/soak.sock"
    service = ServiceProcess(short_tmp, {"bind": endpoint}, poll_timeout=5).wait_ready()
    warm = PUSH_EVENTS // 10
    started = time.monotonic()
    try:
        with EventListener(connect=endpoint, sndtimeo=10_000, bus=bus) as listener:
            for i in range(PUSH_EVENTS):
                listener("soak.event", {"i": i, "body": BODY})
                if i == warm:
                    wait_lines(service.out, warm, 60)
                    before = resident_kib(service.proc.pid)
        wait_lines(service.out, PUSH_EVENTS, 600)
        took = time.monotonic() - started
        after = resident_kib(service.proc.pid)
        received = [row["payload"]["i"] for row in service.events("soak.event")]
    finally:
        service.stop()
    lost = PUSH_EVENTS - len(set(received))
    figures(
        f"soak PUSH/PULL: sent {PUSH_EVENTS:,}, push errors {len(errors)}, received "
        f"{len(received):,} in order {received == list(range(PUSH_EVENTS))}, lost {lost}, "
        f"{took:.0f} s ({PUSH_EVENTS / took:,.0f}/s), service memory after warm-up "
        f"{growth(before, after)}"
    )
    assert errors == []
    assert received == list(range(PUSH_EVENTS))
    assert after < before * 1.10


@pytest.mark.timeout(1800)
def test_confirmed_events_all_arrive_in_order_and_service_memory_stays_flat(
    short_tmp: Path, figures: Figures, sending: tuple[Bus, list[Any]]
) -> None:
    bus, errors = sending
    endpoint = f"ipc://{short_tmp}/soak.sock"
    service = ServiceProcess(
        short_tmp, {"bind": endpoint, "confirmed": True}, poll_timeout=5
    ).wait_ready()
    warm = CONFIRMED_EVENTS // 10
    started = time.monotonic()
    try:
        with EventListener(connect=endpoint, confirmed=True, bus=bus) as listener:
            for i in range(CONFIRMED_EVENTS):
                listener("soak.event", {"i": i, "body": BODY})
                if i == warm:
                    before = resident_kib(service.proc.pid)
        took = time.monotonic() - started
        after = resident_kib(service.proc.pid)
        received = [row["payload"]["i"] for row in service.events("soak.event")]
    finally:
        service.stop()
    figures(
        f"soak confirmed (window 1): sent {CONFIRMED_EVENTS:,}, confirmed "
        f"{CONFIRMED_EVENTS - len(errors):,}, received {len(received):,}, "
        f"{took:.0f} s ({CONFIRMED_EVENTS / took:,.0f}/s), service memory after warm-up "
        f"{growth(before, after)}"
    )
    assert errors == []
    assert received == list(range(CONFIRMED_EVENTS))
    assert after < before * 1.10


@pytest.mark.timeout(1800)
def test_bridge_events_are_all_handled_and_bridge_and_worker_memory_stays_flat(
    short_tmp: Path,
    figures: Figures,
    sending: tuple[Bus, list[Any]],
    workers: Callable[..., Workers],
) -> None:
    bus, errors = sending
    endpoint, ready = f"ipc://{short_tmp}/bridge.sock", short_tmp / "up"
    with RedisServer() as server:
        args = [str(BRIDGE_SCRIPT), server.url, "soak", endpoint, str(ready), "--confirmed"]
        bridge = subprocess.Popen(
            [sys.executable, *args],
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        log = Log(short_tmp / "handled.log")
        worker = workers(server.url, "soak", "list", log.path).start(keep_alive=30)
        warm = BRIDGE_EVENTS // 10
        started = time.monotonic()
        try:
            wait_exists(ready)
            with EventListener(connect=endpoint, confirmed=True, window=1000, bus=bus) as listener:
                for i in range(BRIDGE_EVENTS):
                    listener("job.soak", {"i": i, "body": BODY})
                    if i == warm:
                        wait_lines(log.path, 2 * warm, 120)  # a start and a done line each
                        before = resident_kib(bridge.pid), resident_kib(worker.pid)
            wait_lines(log.path, 2 * BRIDGE_EVENTS, 900)
            took = time.monotonic() - started
            after = resident_kib(bridge.pid), resident_kib(worker.pid)
            with RedisQueue("soak", server.url) as queue:
                stats = queue.stats()
        finally:
            bridge.terminate()
            bridge.wait(15)
    handled = log.handled()
    figures(
        f"soak bridge: sent {BRIDGE_EVENTS:,}, confirmed {BRIDGE_EVENTS - len(errors):,}, "
        f"handled {len(handled):,}, lost {BRIDGE_EVENTS - len(handled)}, "
        f"{took:.0f} s ({BRIDGE_EVENTS / took:,.0f}/s), after warm-up: bridge memory "
        f"{growth(before[0], after[0])}, worker memory {growth(before[1], after[1])}"
    )
    assert errors == []
    assert handled == set(range(BRIDGE_EVENTS))
    assert stats["processing"] == 0
    assert after[0] < before[0] * 1.10
    assert after[1] < before[1] * 1.10
