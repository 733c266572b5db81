"""Property tests: what decoding does with any input (hypothesis).

Encoding then decoding gives back what was sent; decoding anything at all either
returns a value or raises the documented error (``DecodeError``), never another
exception, for ZeroMQ frames and for stored Redis bodies alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zevents import DecodeError, EventSocket
from zevents.confirmations import status_error
from zevents.eventsocket import TOKEN_MARKER
from zevents.redis._outcome import Outcome
from zevents.redis.message import BodyCodec, failed_entry

# Socket-free functions are fast: many examples. Real sockets: fewer.
FAST = settings(max_examples=300, deadline=None)
SOCKETS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
event_names = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s != "")
frames = st.lists(st.binary(max_size=64), max_size=8)


@pytest.fixture(scope="module")
def sockets() -> Iterator[tuple[EventSocket, EventSocket]]:
    """A connected PAIR of event sockets, shared by the examples of a module."""
    context: zmq.Context[Any] = zmq.Context()
    a: EventSocket = context.socket(zmq.PAIR, socket_class=EventSocket)
    b: EventSocket = context.socket(zmq.PAIR, socket_class=EventSocket)
    for sock in (a, b):
        sock.linger = 0
        sock.rcvtimeo = 2000
        sock.sndtimeo = 2000
    a.bind("inproc://properties")
    b.connect("inproc://properties")
    yield a, b
    context.destroy(linger=0)


@FAST
@given(event=event_names, payload=json_values)
def test_encode_then_decode_gives_back_the_event_and_payload(event: str, payload: Any) -> None:
    sock = EventSocket.__new__(EventSocket)  # encode/decode need no open socket
    assert sock.decode(sock.encode(event, payload)) == (event, payload)


@FAST
@given(raw=frames)
def test_decoding_any_frames_returns_or_raises_decode_error(raw: list[bytes]) -> None:
    sock = EventSocket.__new__(EventSocket)
    try:
        event, _ = sock.decode(raw)
    except DecodeError as exc:
        error: DecodeError | None = exc
    else:
        error = None
        assert isinstance(event, str)
        assert event
    if error is not None:
        assert error.frames == raw  # the error keeps what came in


@SOCKETS
@given(raw=frames.filter(bool))
def test_receiving_any_frames_returns_an_event_or_raises_decode_error(
    sockets: tuple[EventSocket, EventSocket], raw: list[bytes]
) -> None:
    sender, receiver = sockets
    sender.send_multipart(raw)
    try:
        received = receiver.receive()
    except DecodeError:
        return
    assert isinstance(received.event, str)
    assert received.event
    if received.token is not None:
        assert received.token.startswith(TOKEN_MARKER)


@SOCKETS
@given(event=event_names, payload=json_values)
def test_what_is_pushed_is_received_unchanged(
    sockets: tuple[EventSocket, EventSocket], event: str, payload: Any
) -> None:
    sender, receiver = sockets
    sender.push(event, payload)
    assert receiver.pull() == (event, payload)


@FAST
@given(body=st.binary(max_size=200))
def test_decoding_any_stored_body_returns_fields_or_raises_decode_error(body: bytes) -> None:
    try:
        fields = BodyCodec().decode(body)
    except DecodeError as exc:
        error: DecodeError | None = exc
    else:
        error = None
        assert isinstance(fields["event"], str)
    if error is not None:
        assert error.frames == [body]


@FAST
@given(
    event=event_names,
    payload=json_values,
    priority=st.integers(min_value=-1000, max_value=1000),
    identifier=st.none() | st.text(max_size=20),
)
def test_a_body_decodes_to_what_was_encoded(
    event: str, payload: Any, priority: int, identifier: str | None
) -> None:
    codec = BodyCodec()
    fields = codec.decode(codec.encode(event, payload, priority, identifier))
    assert (fields["event"], fields["payload"], fields["priority"]) == (event, payload, priority)
    assert fields.get("identifier") == identifier


@FAST
@given(record=st.binary(max_size=200), body=st.none() | st.binary(max_size=200))
def test_a_failed_store_entry_is_read_whatever_it_holds(record: bytes, body: bytes | None) -> None:
    entry = failed_entry("some-id", record, body, BodyCodec())
    assert entry.id == "some-id"
    assert isinstance(entry.error, str)


@FAST
@given(status=st.binary(max_size=100))
def test_any_confirmation_status_reads_as_ok_or_an_error_text(status: bytes) -> None:
    error = status_error(status)
    assert error is None or isinstance(error, str)


@FAST
@given(data=st.binary(max_size=100))
def test_a_forked_receivers_report_is_an_outcome_or_a_value_error(data: bytes) -> None:
    try:
        outcome: Outcome | None = Outcome.from_json(data)
    except ValueError:
        outcome = None
    assert outcome is None or outcome.kind is not None
