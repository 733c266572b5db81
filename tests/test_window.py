"""Windowed confirmed delivery: several events in flight, confirmations matched by token
in any order, each failure reported once, flush and close."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_tcp_port
from tests.helpers import wait_for
from zevents import Bus, ConfigError, DeliveryError, EventListener
from zevents.confirmations import ConfirmWindow
from zevents.events import PUSH_ERROR


def windowed(endpoint: str | list[str], window: int, **options: Any) -> tuple[Any, list[Any]]:
    bus = Bus("sender")
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda e, p: errors.append(p))
    listener = EventListener(connect=endpoint, confirmed=True, window=window, bus=bus, **options)
    return listener, errors


def test_a_window_keeps_many_in_flight_and_flush_waits_for_all(start: Any, endpoint: str) -> None:
    service = start({"bind": endpoint, "confirmed": True})
    listener, errors = windowed(endpoint, 100, rcvtimeo=10_000)
    for i in range(2000):
        listener.send("tick", i)
    listener.flush()
    assert listener.in_flight == 0
    assert [row["payload"] for row in service.events("tick")] == list(range(2000))
    assert errors == []
    listener.close()


def test_send_returns_once_on_the_wire_and_waits_only_for_a_full_window(
    start: Any, short_tmp: Path
) -> None:
    endpoint = f"ipc://{short_tmp}/slow.sock"
    service = start({"bind": endpoint, "confirmed": True}, slow="slow")
    listener, errors = windowed(endpoint, 3, rcvtimeo=10_000)
    for _ in range(3):
        listener.send("slow", {"seconds": 1.0})
    assert listener.in_flight == 3  # none of them handled yet: each takes a second
    listener.send("slow", {"seconds": 0.0})  # waits until the first is confirmed
    assert service.events("slow")
    assert listener.in_flight <= 3
    listener.flush()
    assert len(service.events("slow")) == 4
    assert errors == []
    listener.close()


def test_confirmations_in_any_order_are_matched_by_token(start: Any, short_tmp: Path) -> None:
    """Two services behind one DEALER: the slow one answers late, the fast one at once."""
    slow = f"ipc://{short_tmp}/slow.sock"
    fast = f"ipc://{short_tmp}/fast.sock"
    start({"bind": slow, "confirmed": True}, slow="job")
    start({"bind": fast, "confirmed": True})
    listener, errors = windowed([slow, fast], 10, rcvtimeo=10_000)
    assert listener.wait_for_peers(5.0) == 2
    for i in range(6):
        listener.send("job", {"seconds": 0.3, "i": i})
    listener.flush()
    assert errors == []
    listener.close()


def test_an_unconfirmed_event_is_reported_once_and_flush_names_it(
    start: Any, short_tmp: Path
) -> None:
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    start({"bind": endpoint, "confirmed": True}, slow="slow")
    listener, errors = windowed(endpoint, 10, rcvtimeo=300)
    listener.send("slow", {"seconds": 1.5})
    listener.send("after", 1)  # queued behind the slow one: also late
    with pytest.raises(DeliveryError, match=r"2 event\(s\) not confirmed: 'slow'") as info:
        listener.flush()
    assert [event for event, _ in info.value.unconfirmed] == ["slow", "after"]
    assert [e["event"] for e in errors] == ["slow", "after"]
    assert {e["error_type"] for e in errors} == {"DeliveryTimeout"}
    # the late confirmations, when they come, settle nothing and report nothing again
    # (probes sent while the service is still busy time out and are reported, each once)
    wait_for(lambda: _confirmed(listener, "probe"), what="service free again")
    reported = [e["event"] for e in errors]
    assert (reported.count("slow"), reported.count("after")) == (1, 1)
    assert set(reported) <= {"slow", "after", "probe"}
    listener.close()


def _confirmed(listener: EventListener, event: str) -> bool:
    listener.send(event, None)
    try:
        listener.flush()
    except DeliveryError:
        return False
    return True


def test_a_remote_failure_in_the_window_is_reported_once(start: Any, endpoint: str) -> None:
    start({"bind": endpoint, "confirmed": True}, fail="boom")
    listener, errors = windowed(endpoint, 50, rcvtimeo=5_000)
    for i in range(5):
        listener.send("boom" if i == 2 else "fine", i)
    with pytest.raises(DeliveryError, match=r"1 event\(s\) not confirmed: 'boom'.*RemoteError"):
        listener.flush()
    assert [(e["event"], e["error_type"]) for e in errors] == [("boom", "RemoteError")]
    listener.flush()  # nothing new since
    listener.close()


def test_close_flushes_first(start: Any, endpoint: str) -> None:
    service = start({"bind": endpoint, "confirmed": True})
    listener, errors = windowed(endpoint, 1000, rcvtimeo=5_000)
    for i in range(300):
        listener.send("tick", i)
    listener.close()
    assert listener.in_flight == 0
    assert len(service.events("tick")) == 300
    assert errors == []


def test_a_window_needs_confirmed_delivery() -> None:
    with pytest.raises(ConfigError, match="window"):
        EventListener(connect="ipc:///tmp/x.sock", window=10)
    with pytest.raises(ConfigError, match="window"):
        EventListener(connect="ipc:///tmp/x.sock", confirmed=True, window=0)


def test_the_window_matches_out_of_order_confirmations_and_times_out_the_oldest() -> None:
    """The sans-I/O window alone: what the sync and asyncio listeners share."""
    window = ConfirmWindow(3, timeout=1.0, endpoint="ipc://x")
    for n, token in enumerate((b"a", b"b", b"c")):
        window.add(token, f"e{n}", n, now=100.0)
    assert window.is_full
    assert window.confirm(b"b", b'{"ok":true}') is not None
    assert window.confirm(b"b", b'{"ok":true}') is None  # a late duplicate
    failed = window.confirm(b"c", b'{"ok":false,"error":"ValueError: no"}')
    assert failed is not None
    assert str(failed.error) == "ValueError: no"
    assert window.expire(now=100.5) == []
    (expired,) = window.expire(now=101.0)
    assert (expired.event, type(expired.error).__name__) == ("e0", "DeliveryTimeout")
    assert len(window) == 0
