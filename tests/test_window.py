"""Windowed confirmed delivery: several events in flight, confirmations matched by token
in any order, each failure reported once, flush and close."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.conftest import free_tcp_port
from tests.helpers import wait_for
from zevents import Bus, ConfigError, DeliveryError, EventListener
from zevents.confirmations import (
    CONFIRM_OK,
    TOKEN_LENGTH,
    TOKEN_MARKER,
    ConfirmWindow,
    new_token,
    split_tokens,
)
from zevents.events import PUSH_ERROR
from zevents.eventsocket import Answer, EventSocket


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


def test_a_batched_confirmation_settles_every_token_it_carries() -> None:
    """A confirmation's token frame may hold several tokens end to end; an OK one
    settles them all, a failed one reports each, late tokens settle nothing."""
    window = ConfirmWindow(10, timeout=None, endpoint="ipc://x")
    tokens = [window.open(f"e{n}", n) for n in range(5)]
    assert all(len(t) == TOKEN_LENGTH and t.startswith(TOKEN_MARKER) for t in tokens)
    assert split_tokens(b"".join(tokens)) == tokens
    assert window.settle(b"".join(tokens[:3]), CONFIRM_OK) == []
    assert len(window) == 2
    failed = window.settle(b"".join(tokens[2:]), b'{"ok":false,"error":"KeyError: k"}')
    assert [(f.event, str(f.error)) for f in failed] == [
        ("e3", "KeyError: k"),
        ("e4", "KeyError: k"),
    ]
    assert len(window) == 0
    window.discard(window.open("never", None))  # a send that failed leaves nothing
    assert len(window) == 0


def test_the_service_confirms_a_drained_batch_in_one_message_per_sender(
    context: zmq.Context[zmq.Socket[bytes]], short_tmp: Path
) -> None:
    """``confirmations_of`` on a real ROUTER: one message per sender for what went
    well, one each for failures; a raw DEALER peer reads them back."""
    endpoint = f"ipc://{short_tmp}/batch.sock"
    router: EventSocket = context.socket(zmq.ROUTER, socket_class=EventSocket)  # type: ignore[assignment]
    router.linger = 0
    router.rcvtimeo = router.sndtimeo = 5000
    router.bind(endpoint)
    peers = []
    for name in (b"one", b"two"):
        peer = context.socket(zmq.DEALER)
        peer.linger = 0
        peer.rcvtimeo = 5000
        peer.identity = name
        peer.connect(endpoint)
        peers.append(peer)
    sent = {}
    for peer in peers:
        for n in range(3):
            token = new_token()
            sent[token] = peer.identity
            peer.send_multipart([b"job", str(n).encode(), token])
    answers: list[Answer] = []
    for _ in range(6):
        received = router.receive()
        error = ValueError("bad") if received.payload == 2 else None
        answers.append((received, error))
    messages = router.confirmations_of(answers)
    # two failures, one each; the four that went well: one message per sender
    assert sorted(count for _frames, _event, count in messages) == [1, 1, 2, 2]
    for frames, _event, _count in messages:
        router.send_frames(frames)
    for peer in peers:
        got = [peer.recv_multipart() for _ in range(2)]
        ok = [f for f in got if f[2] == CONFIRM_OK]
        failed = [f for f in got if f[2] != CONFIRM_OK]
        assert len(ok) == len(failed) == 1
        assert {sent[t] for t in split_tokens(ok[0][1])} == {peer.identity}
        assert len(split_tokens(ok[0][1])) == 2
        assert b"ValueError: bad" in failed[0][2]
    router.close()
    for peer in peers:
        peer.close()
