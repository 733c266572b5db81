"""The local bus: patterns, order, results, blinker interop."""

from __future__ import annotations

import gc
import threading
from typing import Any

import pytest

import zevents
from zevents import Bus, ConfigError, ReceiverError, current_bus


@pytest.fixture
def bus() -> Bus:
    return Bus("test")


def test_fire_calls_exact_receiver_with_event_and_payload(bus: Bus) -> None:
    seen: list[tuple[str, Any]] = []
    bus.listen("orders.created", lambda event, payload: seen.append((event, payload)))
    bus.fire("orders.created", {"id": 1})
    bus.fire("orders.deleted", {"id": 2})
    assert seen == [("orders.created", {"id": 1})]


@pytest.mark.parametrize(
    ("pattern", "event", "matches"),
    [
        ("orders.*", "orders.created", True),
        ("orders.*", "orders.item.added", True),
        ("orders.*", "orders", False),
        ("orders.*", "xorders.created", False),
        ("*", "anything.at.all", True),
        ("*.failed", "payment.failed", True),
        ("*.failed", "payment.failed.twice", False),
        ("a*c", "abc", True),
        ("a*c", "ac", True),
        ("a.c", "abc", False),  # dots are literal, not regex
        ("o[1]", "o[1]", True),  # regex characters are literal
    ],
)
def test_star_matches_any_run_of_characters(
    bus: Bus, pattern: str, event: str, matches: bool
) -> None:
    seen: list[str] = []
    bus.listen(pattern, lambda e, p: seen.append(e))
    bus.fire(event)
    assert seen == ([event] if matches else [])


def test_receivers_run_in_registration_order_across_patterns(bus: Bus) -> None:
    order: list[str] = []
    bus.listen("a.*", lambda e, p: order.append("wild-1"))
    bus.listen("a.b", lambda e, p: order.append("exact"))
    bus.listen("*", lambda e, p: order.append("wild-2"))
    bus.fire("a.b")
    assert order == ["wild-1", "exact", "wild-2"]


def test_fire_returns_receiver_and_return_value_pairs(bus: Bus) -> None:
    def one(event: str, payload: Any) -> int:
        return 1

    def two(event: str, payload: Any) -> str:
        return str(payload * 2)

    bus.listen("x", one)
    bus.listen("x*", two)
    assert bus.fire("x", "ab") == [(one, 1), (two, "abab")]
    assert bus.fire("nothing") == []


def test_on_decorator_registers_and_returns_function(bus: Bus) -> None:
    @bus.on("evt")
    def handler(event: str, payload: Any) -> str:
        return "done"

    assert callable(handler)
    assert bus.fire("evt") == [(handler, "done")]


def test_forget_one_receiver_or_all_of_a_pattern(bus: Bus) -> None:
    seen: list[str] = []

    def a(e: str, p: Any) -> None:
        seen.append("a")

    def b(e: str, p: Any) -> None:
        seen.append("b")

    bus.listen("x.*", a)
    bus.listen("x.*", b)
    bus.fire("x.1")
    bus.forget("x.*", a)
    bus.fire("x.2")
    bus.forget("x.*")
    bus.fire("x.3")
    assert seen == ["a", "b", "b"]
    assert not bus.has_receivers("x.4")


def test_firing_names_the_event_inside_a_receiver_only(bus: Bus) -> None:
    inside: list[str | None] = []

    def outer(event: str, payload: Any) -> None:
        inside.append(bus.firing)
        bus.fire("inner")

    bus.listen("outer", outer)
    bus.listen("inner", lambda e, p: inside.append(bus.firing))
    bus.fire("outer")
    inside.append(bus.firing)
    assert inside == ["outer", "inner", None]


def test_firing_is_per_bus_and_per_thread(bus: Bus) -> None:
    other = Bus("other")
    seen: dict[str, Any] = {}
    ready = threading.Event()
    release = threading.Event()

    def blocking(e: str, p: Any) -> None:
        ready.set()
        release.wait(5)

    def check(e: str, p: Any) -> None:
        seen["bus"] = bus.firing
        seen["other"] = other.firing
        seen["current"] = current_bus()

    bus.listen("slow", blocking)
    other.listen("check", check)
    thread = threading.Thread(target=bus.fire, args=("slow",))
    thread.start()
    ready.wait(5)
    try:
        other.fire("check")
    finally:
        release.set()
        thread.join(5)
    assert seen == {"bus": None, "other": "check", "current": other}


def test_receiver_exception_propagates_and_firing_is_reset(bus: Bus) -> None:
    def boom(e: str, p: Any) -> None:
        raise ValueError("boom")

    bus.listen("e", boom)
    with pytest.raises(ValueError, match="boom"):
        bus.fire("e")
    assert bus.firing is None
    assert current_bus() is None


def test_lambda_receivers_are_held_strongly(bus: Bus) -> None:
    seen: list[int] = []
    bus.listen("e", lambda e, p: seen.append(p))
    gc.collect()
    bus.fire("e", 7)
    assert seen == [7]


def test_signal_is_a_blinker_signal_that_plain_blinker_code_can_use(bus: Bus) -> None:
    import blinker

    got: list[tuple[Any, dict[str, Any]]] = []

    def native(sender: Any, **kwargs: Any) -> str:
        got.append((sender, kwargs))
        return "native"

    signal = bus.signal("user.login")
    assert isinstance(signal, blinker.NamedSignal)
    assert bus.signal("user.login") is signal
    signal.connect(native)
    results: list[Any] = bus.fire("user.login", {"user": 1})
    assert got == [("user.login", {"payload": {"user": 1}})]
    assert results == [(native, "native")]
    signal.disconnect(native)
    bus.fire("user.login", {"user": 2})
    assert len(got) == 1


def test_bus_receivers_are_visible_on_the_blinker_signal(bus: Bus) -> None:
    def handler(event: str, payload: Any) -> None:
        return None

    bus.listen("a.b", handler)
    assert handler in bus.signal("a.b").receivers.values()


def test_native_receiver_on_pattern_signal_sees_matching_events(bus: Bus) -> None:
    got: list[Any] = []
    bus.signal("jobs.*").connect(lambda sender, **kw: got.append(sender), weak=False)
    bus.fire("jobs.done")
    bus.fire("other")
    assert got == ["jobs.done"]


def test_non_matching_patterns_are_not_rechecked_after_first_fire(bus: Bus) -> None:
    """The receivers of a name are resolved once: later fires only use the cache."""
    seen: list[str] = []
    for i in range(20):
        bus.listen(f"never{i}.*", lambda e, p: seen.append("wrong"))
    bus.listen("hit", lambda e, p: seen.append(e))
    bus.fire("hit")
    assert "hit" in bus._cache
    assert bus.receivers("hit") == [bus._cache["hit"][0][0]]
    bus.fire("hit")
    assert seen == ["hit", "hit"]
    # a new registration invalidates the cache
    bus.listen("h*", lambda e, p: seen.append("new"))
    bus.fire("hit")
    assert seen[-2:] == ["hit", "new"]


def test_module_level_default_bus_is_a_bus() -> None:
    assert isinstance(zevents.bus, Bus)
    assert zevents.bus is zevents.default_bus


def test_listen_rejects_non_callable_and_empty_pattern(bus: Bus) -> None:
    with pytest.raises(ReceiverError, match="not callable") as info:
        bus.listen("x", "not callable")  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    with pytest.raises(ConfigError, match="non-empty"):
        bus.listen("", lambda e, p: None)


def test_forget_removes_a_bound_method_receiver(bus: Bus) -> None:
    """Bound methods are new objects on every access: forget compares by equality."""

    class Counter:
        def __init__(self) -> None:
            self.count = 0

        def hit(self, event: str, payload: Any) -> None:
            self.count += 1

    counter = Counter()
    bus.listen("e", counter.hit)
    bus.fire("e")
    bus.forget("e", counter.hit)
    bus.fire("e")
    assert counter.count == 1
    assert not bus.has_receivers("e")
    assert not bus.signal("e").receivers
