"""EventSocket: frames, decoding errors, push/pull, PUB topics, confirmations."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import zmq

from zevents import DecodeError, DeliveryTimeout, EncodeError, EventSocket, RemoteError
from zevents.eventsocket import TOKEN_MARKER

Context = zmq.Context[zmq.Socket[bytes]]


def make(ctx: Context, kind: int, **options: Any) -> EventSocket:
    sock: EventSocket = ctx.socket(kind, socket_class=EventSocket)  # type: ignore[assignment]
    sock.linger = 0
    sock.rcvtimeo = options.pop("rcvtimeo", 2000)
    sock.sndtimeo = options.pop("sndtimeo", 2000)
    for key, value in options.items():
        setattr(sock, key, value)
    return sock


def pair(
    ctx: Context, endpoint: str, a: int = zmq.PUSH, b: int = zmq.PULL
) -> tuple[EventSocket, EventSocket]:
    receiver = make(ctx, b)
    receiver.bind(endpoint)
    sender = make(ctx, a)
    sender.connect(endpoint)
    return sender, receiver


def test_event_socket_is_a_zmq_socket(context: Context) -> None:
    sock = make(context, zmq.PUSH)
    assert isinstance(sock, zmq.Socket)
    assert sock.getsockopt(zmq.LINGER) == 0  # native options work as usual


@pytest.mark.parametrize(
    ("payload", "frame"),
    [
        (None, b"null"),
        (1, b"1"),
        (True, b"true"),
        ("string", b'"string"'),
        ([1, 2, 3], b"[1,2,3]"),
        ({"key": "value"}, b'{"key":"value"}'),
        ("при/вет", '"при/вет"'.encode()),
        ({}, b"{}"),
    ],
)
def test_encode_gives_name_frame_then_json_frame(
    context: Context, payload: Any, frame: bytes
) -> None:
    sock = make(context, zmq.PUSH)
    assert sock.encode("request.event", payload) == [b"request.event", frame]
    assert sock.decode([b"request.event", frame]) == ("request.event", payload)


def test_encode_of_unserializable_payload_raises_encode_error(context: Context) -> None:
    with pytest.raises(EncodeError):
        make(context, zmq.PUSH).encode("e", {"x": object()})


def test_decode_of_zeroevents_multi_argument_frames_gives_list(context: Context) -> None:
    """zeroevents (PHP) sends one JSON frame per listener argument."""
    sock = make(context, zmq.PULL)
    recorded = [b"request.event", b'["source","parent"]', b'{"id":5}', b"null"]
    assert sock.decode(recorded) == ("request.event", [["source", "parent"], {"id": 5}, None])


def test_decode_of_name_only_frame_gives_none_payload(context: Context) -> None:
    """zeroevents sends no payload frame when a listener got no arguments."""
    assert make(context, zmq.PULL).decode([b"tick"]) == ("tick", None)


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([], "empty message"),
        ([b"\xff\xfe", b"1"], "not UTF-8"),
        ([b"", b"1"], "empty event name"),
        ([b"evt", b"{bad json"], "payload of 'evt' cannot be decoded"),
        ([b"evt", b"1", b"\x00"], "payload of 'evt' cannot be decoded"),
    ],
)
def test_decode_errors_keep_frames(context: Context, frames: list[bytes], message: str) -> None:
    with pytest.raises(DecodeError, match=message) as info:
        make(context, zmq.PULL).decode(frames)
    assert info.value.frames == frames
    assert isinstance(info.value, ValueError)


def test_push_pull_round_trip(context: Context, endpoint: str) -> None:
    sender, receiver = pair(context, endpoint)
    sender.push("orders.created", {"id": 1, "name": "при/вет"})
    assert receiver.pull() == ("orders.created", {"id": 1, "name": "при/вет"})


def test_pull_raises_again_when_rcvtimeo_expires(context: Context, ipc_endpoint: str) -> None:
    receiver = make(context, zmq.PULL, rcvtimeo=50)
    receiver.bind(ipc_endpoint)
    with pytest.raises(zmq.Again):
        receiver.pull()


def test_push_raises_again_without_peer_after_sndtimeo(context: Context, ipc_endpoint: str) -> None:
    sender = make(context, zmq.DEALER, sndtimeo=50)
    sender.setsockopt(zmq.IMMEDIATE, 1)  # queue only to completed connections
    sender.connect(ipc_endpoint)  # nobody bound
    with pytest.raises(zmq.Again):
        sender.push("e", 1)


def test_pub_topic_is_event_name_so_sub_prefix_filters(context: Context, ipc_endpoint: str) -> None:
    publisher = make(context, zmq.PUB)
    publisher.bind(ipc_endpoint)
    subscriber = make(context, zmq.SUB, rcvtimeo=100)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"orders.")
    subscriber.connect(ipc_endpoint)
    # slow joiner: publish until the subscription has reached the publisher
    for _ in range(100):
        publisher.push("users.created", 0)
        publisher.push("orders.sync", 0)
        try:
            if subscriber.pull() == ("orders.sync", 0):
                break
        except zmq.Again:
            continue
    else:
        pytest.fail("subscription never took effect")
    publisher.push("users.created", 1)
    publisher.push("orders.created", 2)
    got = []
    while True:
        try:
            got.append(subscriber.pull())
        except zmq.Again:
            break
    assert ("orders.created", 2) in got
    assert all(event.startswith("orders.") for event, _ in got)


def test_receive_on_router_gives_address(context: Context, ipc_endpoint: str) -> None:
    sender, receiver = pair(context, ipc_endpoint, zmq.DEALER, zmq.ROUTER)
    sender.setsockopt(zmq.IDENTITY, b"peer-1")
    sender.disconnect(ipc_endpoint)
    sender.connect(ipc_endpoint)
    sender.push("hello", [1])
    received = receiver.receive()
    assert (received.event, received.payload, received.address) == ("hello", [1], b"peer-1")
    assert received.token is None
    receiver.push("reply", "back", address=received.address)
    assert sender.pull() == ("reply", "back")


def _confirming_peer(sock: EventSocket, error: str | None, count: int = 1) -> None:
    for _ in range(count):
        received = sock.receive()
        sock.confirm(received, error)


def test_confirmed_push_returns_after_acknowledgement(context: Context, ipc_endpoint: str) -> None:
    sender, receiver = pair(context, ipc_endpoint, zmq.DEALER, zmq.ROUTER)
    sender.confirmed = True
    thread = threading.Thread(target=_confirming_peer, args=(receiver, None))
    thread.start()
    sender.push("job", {"n": 1})
    thread.join(5)
    assert not thread.is_alive()


def test_confirmed_push_raises_remote_error_text(context: Context, ipc_endpoint: str) -> None:
    sender, receiver = pair(context, ipc_endpoint, zmq.DEALER, zmq.ROUTER)
    sender.confirmed = True
    thread = threading.Thread(target=_confirming_peer, args=(receiver, "ValueError: bad order"))
    thread.start()
    with pytest.raises(RemoteError, match="ValueError: bad order"):
        sender.push("job", {"n": 1})
    thread.join(5)


def test_confirmed_push_times_out_without_answer(context: Context, ipc_endpoint: str) -> None:
    sender, receiver = pair(context, ipc_endpoint, zmq.DEALER, zmq.ROUTER)
    sender.confirmed = True
    sender.confirm_timeout = 100
    with pytest.raises(DeliveryTimeout, match="within 100 ms") as info:
        sender.push("job", 1)
    assert isinstance(info.value, TimeoutError)
    assert receiver.receive().token is not None  # the message itself did arrive


def test_stale_confirmation_is_not_taken_for_the_next_message(
    context: Context, ipc_endpoint: str
) -> None:
    """A late answer to a timed-out message must not confirm the next one."""
    sender, receiver = pair(context, ipc_endpoint, zmq.DEALER, zmq.ROUTER)
    sender.confirmed = True
    sender.confirm_timeout = 100
    with pytest.raises(DeliveryTimeout):
        sender.push("first", 1)
    first = receiver.receive()
    receiver.confirm(first)  # late: the sender already gave up on it
    sender.confirm_timeout = 200
    with pytest.raises(DeliveryTimeout):
        sender.push("second", 2)  # only the stale answer is waiting: not ours
    second = receiver.receive()
    assert second.event == "second"
    receiver.confirm(second, "RuntimeError: second failed")
    sender.confirm_timeout = 2000
    # the pending answer for "second" is consumed by the next wait and skipped
    thread = threading.Thread(target=_confirming_peer, args=(receiver, None))
    thread.start()
    sender.push("third", 3)
    thread.join(5)


def test_pull_confirms_a_confirmed_message_on_receipt(context: Context, ipc_endpoint: str) -> None:
    sender, receiver = pair(context, ipc_endpoint, zmq.DEALER, zmq.ROUTER)
    sender.confirmed = True
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(receiver.pull()))
    thread.start()
    sender.push("ping", None)
    thread.join(5)
    assert result == [("ping", None)]


def test_token_frames_are_recognised(context: Context, ipc_endpoint: str) -> None:
    """A last frame of the marker and 8 bytes is a token; JSON or the bare marker is not."""
    sender, receiver = pair(context, ipc_endpoint)
    token = TOKEN_MARKER + b"\x00" * 8
    sender.send_multipart([b"a", b"1", token])
    assert receiver.receive().token == token
    sender.send_multipart([b"b", b"1", b'"json"'])
    assert receiver.receive() == ("b", [1, "json"], None, None)
    sender.send_multipart([b"c", b"1", TOKEN_MARKER])
    with pytest.raises(DecodeError) as info:
        receiver.receive()
    assert info.value.token is None


def test_receive_error_keeps_address_and_token_for_the_answer(
    context: Context, ipc_endpoint: str
) -> None:
    raw = context.socket(zmq.DEALER)
    raw.linger = 0
    raw.connect(ipc_endpoint)
    receiver = make(context, zmq.ROUTER)
    receiver.bind(ipc_endpoint)
    token = TOKEN_MARKER + b"\x00" * 7 + b"\x01"
    raw.send_multipart([b"evt", b"{broken", token])
    with pytest.raises(DecodeError) as info:
        receiver.receive()
    assert info.value.token == token
    assert info.value.address is not None
    receiver.confirm(info.value, "DecodeError: broken")
    assert raw.recv_multipart() == [
        b"zevents.confirmed",
        token,
        b'{"ok":false,"error":"DecodeError: broken"}',
    ]
