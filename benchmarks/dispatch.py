"""3. In-process dispatch: ``bus.fire`` against blinker's ``Signal.send``, ns per call.

Cases: one exact receiver; one exact receiver plus 20 wildcard patterns of which 2
match (blinker, which has no patterns, sends to the same three receivers). A third
figure checks that pattern matching is cached: the same fire with 200 non-matching
patterns instead of 18 costs the same.
"""

from __future__ import annotations

import time
from typing import Any

import blinker

from benchmarks.harness import BODY, EVENT, Figure, Settings, alternate
from zevents import Bus

NAME = "dispatch"


def _receiver() -> Any:
    def receiver(event: str, payload: Any = None) -> None:
        return None

    return receiver


def _bus(non_matching: int) -> tuple[Bus, list[Any]]:
    """A bus with one exact receiver and, unless 0, 2 matching + ``non_matching`` patterns."""
    bus = Bus("bench")
    receivers = [_receiver()]
    bus.listen(EVENT, receivers[0])
    if non_matching:
        for index in range(non_matching):
            bus.listen(f"other{index}.*", _receiver())
        for pattern in ("bench.*", "*.event"):
            receivers.append(_receiver())
            bus.listen(pattern, receivers[-1])
    return bus, receivers


def _signal(receivers: list[Any]) -> blinker.Signal:
    signal = blinker.Signal()
    for receiver in receivers:
        signal.connect(receiver)
    return signal


def _time_fire(fire: Any, body: Any, number: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(number):
        fire(EVENT, body)
    return (time.perf_counter_ns() - start) / number


def _time_send(send: Any, body: Any, number: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(number):
        send(EVENT, payload=body)
    return (time.perf_counter_ns() - start) / number


def run(settings: Settings) -> list[Figure]:
    """ns per call, zevents and blinker in turn."""
    number = settings.count(200_000, 50_000)
    body = {"i": 1, "body": BODY}
    figures = []
    for case, non_matching in (("1 exact receiver", 0), ("1 exact + 20 patterns, 2 match", 18)):
        bus, receivers = _bus(non_matching)
        signal = _signal(receivers)
        fire, send = bus.fire, signal.send
        fire(EVENT, body)  # the first fire of a name resolves and caches its receivers
        z, b = alternate(
            [
                lambda fire=fire: _time_fire(fire, body, number),  # type: ignore[misc]
                lambda send=send: _time_send(send, body, number),  # type: ignore[misc]
            ],
            settings.pairs,
        )
        figures.append(Figure(NAME, case, "ns/call", z, b, "blinker Signal.send", "<= 1.5"))
    # Flatness: 200 non-matching patterns against 18 (after the first fire of the name).
    few, _ = _bus(18)
    many, _ = _bus(200)
    few.fire(EVENT, body)
    many.fire(EVENT, body)
    z, b = alternate(
        [
            lambda: _time_fire(many.fire, body, number),
            lambda: _time_fire(few.fire, body, number),
        ],
        settings.pairs,
    )
    figures.append(
        Figure(
            NAME,
            "200 vs 20 patterns (cache), 2 match",
            "ns/call",
            z,
            b,
            "same bus, 20 patterns",
            "<= 1.1",
            note="zevents column: 200 patterns; baseline column: 20 patterns",
        )
    )
    return figures
