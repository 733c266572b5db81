"""Long runs, deselected by default: ``pytest -m soak``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ServiceProcess
from zevents import Bus, EventListener
from zevents.events import PUSH_ERROR

pytestmark = pytest.mark.soak

EVENTS = int(os.environ.get("ZEVENTS_SOAK_EVENTS", "200000"))


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def service(short_tmp: Path) -> Iterator[ServiceProcess]:
    child = ServiceProcess(
        short_tmp, {"bind": f"ipc://{short_tmp}/soak.sock", "confirmed": True}, poll_timeout=5
    )
    yield child.wait_ready()
    child.stop()


@pytest.mark.timeout(900)
def test_confirmed_events_all_arrive_in_order_and_service_memory_stays_flat(
    service: ServiceProcess, short_tmp: Path
) -> None:
    bus = Bus("soak")
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda event, payload: errors.append(payload))
    listener = EventListener(connect=f"ipc://{short_tmp}/soak.sock", confirmed=True)
    bus.listen("soak.*", listener)
    body = "x" * 100
    warm = EVENTS // 10
    samples = []
    for i in range(EVENTS):
        bus.fire("soak.event", {"i": i, "body": body})
        if i == warm or i == EVENTS - 1:
            samples.append(resident_kib(service.proc.pid))
    listener.close()
    assert errors == []
    received = service.events("soak.event")
    assert [row["payload"]["i"] for row in received] == list(range(EVENTS))
    assert samples[1] < samples[0] * 1.10, samples
