"""``zevents.aio.EventListener`` against a sync service in another process: plain,
confirmed and windowed sends, the typed errors, and cancellation mid-send."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.aio.conftest import StartService
from zevents import Bus, DeliveryError, DeliveryTimeout, RemoteError
from zevents.aio import EventListener
from zevents.events import PUSH_ERROR


def test_plain_and_confirmed_sends_reach_a_sync_service(
    start_service: StartService, short_tmp: Path
) -> None:
    confirmed = f"ipc://{short_tmp}/confirmed.sock"
    plain = f"ipc://{short_tmp}/plain.sock"
    service = start_service({"bind": confirmed, "confirmed": True}, {"bind": plain}, fail="bad.*")

    async def main() -> None:
        async with EventListener(connect=confirmed, confirmed=True, rcvtimeo=5000) as listener:
            await listener.send("orders.created", {"id": 1})
            # confirmed: the remote receivers ran before send returned
            assert [row["payload"] for row in service.events("orders.created")] == [{"id": 1}]
            with pytest.raises(RemoteError, match=r"RuntimeError: receiver failed on bad\.one"):
                await listener.send("bad.one", None)
            await listener.send("orders.created", {"id": 2})
        async with EventListener(connect=plain) as sender:
            await sender.send("plain.event", [1, 2])

    asyncio.run(main())
    assert [row["payload"] for row in service.events("orders.created")] == [{"id": 1}, {"id": 2}]
    assert service.wait_events("plain.event")[0]["payload"] == [1, 2]


def test_no_peer_within_sndtimeo_is_a_delivery_timeout_of_an_unsent_event(
    short_tmp: Path,
) -> None:
    async def main() -> DeliveryTimeout:
        listener = EventListener(connect=f"ipc://{short_tmp}/nobody.sock", sndtimeo=50)
        with pytest.raises(DeliveryTimeout, match="sndtimeo=50") as caught:
            await listener.send("lost", 1)
        await listener.aclose()
        return caught.value

    error = asyncio.run(main())
    assert error.sent is False
    assert error.event == "lost"


def test_a_window_keeps_many_in_flight_and_flush_waits_for_all(
    start_service: StartService, short_tmp: Path
) -> None:
    endpoint = f"ipc://{short_tmp}/window.sock"
    service = start_service({"bind": endpoint, "confirmed": True}, fail="tick.bad")
    errors: list[Any] = []
    bus = Bus("sender")
    bus.listen(PUSH_ERROR, lambda event, payload: errors.append(payload))

    async def main() -> None:
        listener = EventListener(connect=endpoint, confirmed=True, window=50, bus=bus)
        for i in range(1000):
            await listener.send("tick.bad" if i == 500 else "tick", i)
        assert 0 < listener.in_flight <= 50
        with pytest.raises(DeliveryError, match=r"1 event\(s\) not confirmed: 'tick.bad'"):
            await listener.flush()
        assert listener.in_flight == 0
        await listener.send("tick", 1000)
        await listener.aclose()  # flushes first
        assert listener.in_flight == 0

    asyncio.run(main())
    assert [row["payload"] for row in service.events("tick")] == [
        i for i in range(1001) if i != 500
    ]
    assert [(e["event"], e["error_type"]) for e in errors] == [("tick.bad", "RemoteError")]


def test_as_an_async_bus_receiver_it_forwards_and_reports_failures(short_tmp: Path) -> None:
    endpoint = f"ipc://{short_tmp}/receiver.sock"
    bus = Bus("app")
    reports: list[Any] = []

    async def on_push_error(event: str, payload: Any) -> None:
        reports.append(payload)

    bus.listen(PUSH_ERROR, on_push_error)
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.bind(endpoint)

    async def main() -> list[Any]:
        forwarder = EventListener(connect=endpoint, linger=0)
        lost = EventListener(connect=f"ipc://{short_tmp}/nobody.sock", sndtimeo=20, linger=0)
        bus.listen("orders.*", forwarder)
        bus.listen("orders.*", lost)
        results = await bus.fire_async("orders.created", {"id": 7})
        forwarder.close()
        lost.close()
        return results

    try:
        results = asyncio.run(main())
        assert pull.poll(5000)
        assert pull.recv_multipart() == [b"orders.created", b'{"id":7}']
    finally:
        pull.close(linger=0)
        ctx.term()
    assert [result for _, result in results] == [True, False]
    assert [(r["event"], r["error_type"]) for r in reports] == [
        ("orders.created", "DeliveryTimeout")
    ]


def test_a_send_cancelled_awaiting_its_confirmation_leaves_the_socket_usable(
    start_service: StartService, short_tmp: Path
) -> None:
    """The late confirmation of the cancelled send is not taken for the next one: that
    one's receiver fails, and its own confirmation (a RemoteError) is what it gets."""
    endpoint = f"ipc://{short_tmp}/cancel.sock"
    service = start_service({"bind": endpoint, "confirmed": True}, slow="slow", fail="fails")

    async def main() -> None:
        listener = EventListener(connect=endpoint, confirmed=True, rcvtimeo=10_000)
        slow = asyncio.create_task(listener.send("slow", {"seconds": 0.5}))
        await asyncio.to_thread(service.wait_events, "slow")  # handled, not yet confirmed
        socket = listener.socket
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert listener.socket is socket  # kept: nothing half-sent, nothing to forget
        # the slow event's OK comes first on the wire; this send skips it
        with pytest.raises(RemoteError, match="receiver failed on fails"):
            await listener.send("fails", 1)
        await listener.send("fine", 2)
        await listener.aclose()

    asyncio.run(main())
    events = [row["event"] for row in service.events()]
    assert [event for event in events if not event.startswith("zevents.")] == [
        "slow",
        "fails",
        "fine",
    ]


def test_a_send_cancelled_waiting_for_a_peer_sends_nothing(short_tmp: Path) -> None:
    endpoint = f"ipc://{short_tmp}/late.sock"
    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)

    async def main() -> None:
        listener = EventListener(connect=endpoint, sndtimeo=10_000, linger=0)
        waiting = asyncio.create_task(listener.send("cancelled", 0))
        await asyncio.sleep(0)  # let it start waiting for room
        assert not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        pull.bind(endpoint)
        await listener.send("whole", 1)
        await listener.send("after", 2)
        listener.close()

    try:
        asyncio.run(main())
        received = []
        for _ in range(2):
            assert pull.poll(5000)
            received.append(pull.recv_multipart())
    finally:
        pull.close(linger=0)
        ctx.term()
    assert received == [[b"whole", b"1"], [b"after", b"2"]]


def test_wait_for_peers_awaits_every_connect_endpoint(short_tmp: Path) -> None:
    """With both handshakes done, two events go one to each peer (round robin)."""
    endpoints = [f"ipc://{short_tmp}/peer{n}.sock" for n in range(2)]
    ctx = zmq.Context()
    pulls = [ctx.socket(zmq.PULL) for _ in endpoints]
    for pull, endpoint in zip(pulls, endpoints, strict=True):
        pull.bind(endpoint)

    async def main() -> int:
        async with EventListener(connect=endpoints, linger=0) as listener:
            peers = await listener.wait_for_peers(5.0)
            await listener.send("split", 1)
            await listener.send("split", 2)
        return peers

    try:
        assert asyncio.run(main()) == 2
        assert all(pull.poll(5000) for pull in pulls)
        assert sorted(pull.recv_multipart()[1] for pull in pulls) == [b"1", b"2"]
    finally:
        for pull in pulls:
            pull.close(linger=0)
        ctx.term()
