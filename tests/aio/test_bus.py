"""``Bus.fire_async``: sync and async receivers in registration order, their results and
errors; the sync ``fire`` refusing an event that reaches an async receiver."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable
from typing import Any

import pytest

from zevents import Bus, ReceiverError, current_bus


def test_fire_async_runs_sync_and_async_receivers_in_registration_order() -> None:
    bus = Bus("order")
    order: list[str] = []

    async def slow(event: str, payload: Any) -> str:
        await asyncio.sleep(0.01)  # a later receiver must still wait for this one
        order.append("slow")
        return "slow done"

    def plain(event: str, payload: Any) -> str:
        order.append("plain")
        return "plain done"

    async def fast(event: str, payload: Any) -> int:
        order.append("fast")
        return int(payload) + 1

    bus.listen("a.*", slow)
    bus.listen("a.b", plain)
    bus.listen("*", fast)
    results = asyncio.run(bus.fire_async("a.b", 41))
    assert order == ["slow", "plain", "fast"]
    assert results == [(slow, "slow done"), (plain, "plain done"), (fast, 42)]


def test_fire_async_awaits_what_a_sync_receiver_returns() -> None:
    bus = Bus("awaitables")

    async def later(value: int) -> int:
        await asyncio.sleep(0)
        return value * 2

    def returns_coroutine(event: str, payload: Any) -> Awaitable[int]:
        return later(payload)

    bus.listen("x", returns_coroutine)
    assert asyncio.run(bus.fire_async("x", 21)) == [(returns_coroutine, 42)]


def test_fire_async_stops_at_the_first_receiver_that_raises() -> None:
    bus = Bus("errors")
    ran: list[str] = []

    async def fails(event: str, payload: Any) -> None:
        ran.append("fails")
        raise ValueError("bad payload")

    bus.listen("x", fails)
    bus.listen("x", lambda event, payload: ran.append("after"))
    with pytest.raises(ValueError, match="bad payload"):
        asyncio.run(bus.fire_async("x"))
    assert ran == ["fails"]


def test_sync_fire_refuses_an_async_receiver_before_running_any() -> None:
    bus = Bus("refuse")
    ran: list[str] = []

    async def handler(event: str, payload: Any) -> None:
        ran.append("async")

    bus.listen("orders.*", lambda event, payload: ran.append("sync"))
    bus.listen("orders.*", handler)
    with pytest.raises(ReceiverError, match=r"handler.*fire_async") as caught:
        bus.fire("orders.created")
    assert "orders.created" in str(caught.value)
    assert ran == []  # nothing half-ran
    bus.fire("other")  # events that reach no async receiver still fire
    asyncio.run(bus.fire_async("orders.created"))
    assert ran == ["sync", "async"]


def test_async_call_methods_and_partials_are_async_receivers() -> None:
    class Forwarder:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        async def __call__(self, event: str, payload: Any) -> None:
            self.seen.append(payload)

    async def tagged(tag: str, event: str, payload: Any) -> str:
        return f"{tag}:{payload}"

    bus = Bus("kinds")
    forwarder = Forwarder()
    partial = functools.partial(tagged, "t")
    bus.listen("x", forwarder)
    bus.listen("x", partial)
    with pytest.raises(ReceiverError):
        bus.fire("x", 1)
    assert asyncio.run(bus.fire_async("x", 1)) == [(forwarder, None), (partial, "t:1")]
    assert forwarder.seen == [1]


def test_blinker_receivers_are_awaited_by_fire_async_and_refused_by_fire() -> None:
    bus = Bus("natives")
    seen: list[Any] = []

    async def native(event: str, payload: Any = None) -> None:
        seen.append(payload)

    bus.signal("x").connect(native, weak=False)
    asyncio.run(bus.fire_async("x", 5))
    assert seen == [5]
    with pytest.raises(ReceiverError, match="fire_async"):
        bus.fire("x", 6)


def test_current_bus_and_firing_inside_async_receivers_are_per_task() -> None:
    bus = Bus("tasks")
    seen: list[tuple[str, Bus | None, str | None]] = []

    async def receiver(event: str, payload: Any) -> None:
        await asyncio.sleep(0.01 if payload == "first" else 0)  # the tasks interleave
        seen.append((payload, current_bus(), bus.firing))

    bus.listen("*", receiver)

    async def main() -> None:
        await asyncio.gather(bus.fire_async("one", "first"), bus.fire_async("two", "second"))
        assert current_bus() is None

    asyncio.run(main())
    assert sorted(seen, key=lambda row: row[0]) == [
        ("first", bus, "one"),
        ("second", bus, "two"),
    ]
