"""EventListener: lazy sockets, forwarding, push errors, close and clean-up."""

from __future__ import annotations

import gc
import subprocess
import sys
import time
import weakref
from typing import Any

import pytest
import zmq

from tests.helpers import child_env
from zevents import Bus, EventListener, EventSocket
from zevents.events import PUSH_ERROR, SERVICE_STOP
from zevents.receiving import receiving_socket

Context = zmq.Context[zmq.Socket[bytes]]


def receiver_socket(context: Context, endpoint: str, kind: int = zmq.PULL) -> EventSocket:
    sock: EventSocket = context.socket(kind, socket_class=EventSocket)  # type: ignore[assignment]
    sock.linger = 0
    sock.rcvtimeo = 2000
    sock.bind(endpoint)
    return sock


def test_no_context_or_socket_before_first_event(ipc_endpoint: str) -> None:
    listener = EventListener(connect=ipc_endpoint)
    assert not listener.is_open
    assert listener._socket.context is None
    Bus().listen("x", listener)
    assert not listener.is_open
    listener.close()


def test_first_event_opens_the_socket_and_forwards(context: Context, endpoint: str) -> None:
    pull = receiver_socket(context, endpoint)
    bus = Bus()
    listener = EventListener(connect=endpoint)
    bus.listen("orders.*", listener)
    results = bus.fire("orders.created", {"id": 3})
    assert listener.is_open
    assert results == [(listener, True)]
    assert pull.pull() == ("orders.created", {"id": 3})
    listener.close()


def test_socket_property_opens_lazily_with_options(ipc_endpoint: str) -> None:
    listener = EventListener(
        {"bind": ipc_endpoint, "socket_options": {"sndhwm": 2000}},
        linger=0,
        socket_type="pub",
    )
    sock = listener.socket
    assert isinstance(sock, EventSocket)
    assert listener.socket is sock
    assert sock.getsockopt(zmq.SNDHWM) == 2000
    assert sock.getsockopt(zmq.LINGER) == 0
    assert sock.type == zmq.PUB
    assert listener.endpoints == [ipc_endpoint]
    listener.close()


def test_bind_tcp_wildcard_port_reports_the_real_endpoint() -> None:
    listener = EventListener(bind="tcp://127.0.0.1:*", socket_type="pub", linger=0)
    (endpoint,) = listener.endpoints
    assert endpoint.startswith("tcp://127.0.0.1:")
    assert not endpoint.endswith("*")
    listener.close()


def test_push_error_when_no_peer_within_sndtimeo(ipc_endpoint: str) -> None:
    bus = Bus()
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda e, p: errors.append(p))
    listener = EventListener(connect=ipc_endpoint, sndtimeo=50, linger=0)
    bus.listen("*", listener)
    started = time.monotonic()
    assert bus.fire("job.created", {"n": 1}) == [(listener, False)]
    assert time.monotonic() - started < 2
    (error,) = errors
    assert error["event"] == "job.created"
    assert error["payload"] == {"n": 1}
    assert error["endpoint"] == ipc_endpoint
    assert error["error_type"] == "DeliveryTimeout"
    assert "sndtimeo=50" in error["error"]
    listener.close()


def test_listener_on_star_does_not_forward_its_own_push_errors(ipc_endpoint: str) -> None:
    bus = Bus()
    listener = EventListener(connect=ipc_endpoint, sndtimeo=20, linger=0)
    bus.listen("*", listener)
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda e, p: errors.append(p))
    bus.fire("one")
    assert [e["event"] for e in errors] == ["one"]  # no second error for push.error itself
    listener.close()


def test_service_stop_event_is_forwarded(context: Context, ipc_endpoint: str) -> None:
    pull = receiver_socket(context, ipc_endpoint)
    bus = Bus()
    listener = EventListener(connect=ipc_endpoint)
    bus.listen("*", listener)
    bus.fire(SERVICE_STOP)
    assert pull.pull() == (SERVICE_STOP, None)
    listener.close()


def test_unserializable_payload_fires_push_error_and_does_not_raise(
    context: Context, ipc_endpoint: str
) -> None:
    pull = receiver_socket(context, ipc_endpoint)
    bus = Bus()
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda e, p: errors.append(p))
    listener = EventListener(connect=ipc_endpoint)
    bus.listen("*", listener)
    bus.fire("bad", {"x": object()})
    bus.fire("good", 1)
    assert errors[0]["error_type"] == "EncodeError"
    assert pull.pull() == ("good", 1)
    listener.close()


def test_push_error_goes_to_explicit_bus_when_called_directly(ipc_endpoint: str) -> None:
    bus = Bus()
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda e, p: errors.append(p["event"]))
    listener = EventListener(connect=ipc_endpoint, sndtimeo=10, linger=0, bus=bus)
    assert listener("direct", None) is False
    assert errors == ["direct"]
    listener.close()


def test_closed_listener_reconnects_on_next_event(context: Context, ipc_endpoint: str) -> None:
    pull = receiver_socket(context, ipc_endpoint)
    listener = EventListener(connect=ipc_endpoint)
    listener("a", 1)
    first = listener.socket
    listener.close()
    assert not listener.is_open
    assert first.closed
    listener("b", 2)
    assert listener.socket is not first
    assert [pull.pull(), pull.pull()] == [("a", 1), ("b", 2)]
    listener.close()


def test_socket_closed_underneath_fires_push_error_then_recovers(
    context: Context, ipc_endpoint: str
) -> None:
    pull = receiver_socket(context, ipc_endpoint)
    bus = Bus()
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda e, p: errors.append(p))
    listener = EventListener(connect=ipc_endpoint, bus=bus)
    bus.listen("e", listener)
    bus.fire("e", 1)
    listener.socket.close(linger=0)
    bus.fire("e", 2)
    bus.fire("e", 3)
    assert [error["payload"] for error in errors] == [2]
    assert [pull.pull(), pull.pull()] == [("e", 1), ("e", 3)]
    listener.close()


def test_garbage_collected_listener_closes_its_socket(context: Context, ipc_endpoint: str) -> None:
    receiver_socket(context, ipc_endpoint)
    listener = EventListener(connect=ipc_endpoint, linger=0)
    listener("e", 1)
    sock = listener.socket
    ref = weakref.ref(listener)
    del listener
    gc.collect()
    assert ref() is None
    assert sock.closed


def test_persistent_listeners_share_one_context(ipc_endpoint: str, tcp_endpoint: str) -> None:
    a = EventListener(bind=ipc_endpoint, persistent=True, linger=0)
    b = EventListener(bind=tcp_endpoint, persistent=True, linger=0)
    c = EventListener(bind=tcp_endpoint.replace(tcp_endpoint.rsplit(":", 1)[1], "*"), linger=0)
    assert a.socket.context is b.socket.context
    assert c.socket.context is not a.socket.context
    for listener in (a, b, c):
        listener.close()
    assert not a._socket.owns_context


def test_unclosed_listener_does_not_block_interpreter_exit(short_tmp: Any) -> None:
    """Events queued for an absent peer are dropped after linger at exit, not waited for."""
    code = (
        "from zevents import EventListener\n"
        f"l = EventListener(connect='ipc://{short_tmp}/nobody.sock', immediate=False, linger=300)\n"
        "for i in range(100): l('e', i)\n"
        "print('sent', flush=True)\n"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=20
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "sent"
    assert elapsed < 3  # linger is 0.3 s; Python's own start-up is the rest
    assert "Traceback" not in proc.stderr


def test_infinite_linger_waits_at_most_the_default_at_exit(short_tmp: Any) -> None:
    code = (
        "from zevents import EventListener\n"
        f"l = EventListener(connect='ipc://{short_tmp}/nobody.sock', immediate=False, linger=-1)\n"
        "l('e', 1)\n"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=20
    )
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 5  # 2 s default linger, plus start-up


def test_listener_in_forked_child_opens_its_own_socket(context: Context, ipc_endpoint: str) -> None:
    import os

    pull = receiver_socket(context, ipc_endpoint)
    listener = EventListener(connect=ipc_endpoint)
    listener("parent", os.getpid())
    parent_socket = listener.socket
    pid = os.fork()
    if pid == 0:  # child: must not touch the parent's socket
        code = 1
        try:
            listener("child", os.getpid())
            code = 0 if listener.socket is not parent_socket else 3
            listener.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    got = {pull.pull()[0], pull.pull()[0]}
    assert got == {"parent", "child"}
    assert not parent_socket.closed
    listener.close()


def test_repr_names_role_type_and_endpoint(ipc_endpoint: str) -> None:
    listener = EventListener(connect=ipc_endpoint)
    assert repr(listener) == f"<EventListener sending push {ipc_endpoint}>"
    receiving = receiving_socket(listener)
    assert "receiving pull" in repr(receiving)


@pytest.mark.parametrize("kind", ["sub", "pull"])
def test_receiving_role_types(kind: str, ipc_endpoint: str) -> None:
    receiving = receiving_socket({"bind": ipc_endpoint, "socket_type": kind, "linger": 0})
    assert receiving.socket_type == kind
    receiving.close()


class RaisingSerializer:
    """A custom serializer that fails in the ways the tests need."""

    def __init__(self, error: BaseException | None = None, fire: Any = None) -> None:
        self.error = error
        self.fire = fire

    def dumps(self, obj: Any) -> bytes:
        if self.fire is not None:
            self.fire()
        if self.error is not None:
            raise self.error
        return b"1"

    def loads(self, data: bytes) -> Any:
        return 1


def test_custom_serializer_failure_is_an_encode_error_push_error(ipc_endpoint: str) -> None:
    bus = Bus()
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda e, p: errors.append(p))
    serializer = RaisingSerializer(error=RuntimeError("cannot pack"))
    listener = EventListener(connect=ipc_endpoint, serializer=serializer, sndtimeo=10)
    bus.listen("x", listener)
    assert bus.fire("x", 1) == [(listener, False)]
    assert errors[0]["error_type"] == "EncodeError"
    assert "cannot pack" in errors[0]["error"]
    listener.close()


def test_re_entrant_send_on_the_same_thread_is_reported_not_deadlocked(
    context: Context, ipc_endpoint: str
) -> None:
    """An event fired while this listener is sending (from a signal handler, or here from
    its serializer) comes back to the same listener: it is reported, not waited for."""
    pull = receiver_socket(context, ipc_endpoint)
    bus = Bus()
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda e, p: errors.append(p))
    fired_inside: list[Any] = []
    serializer = RaisingSerializer(fire=lambda: None)
    listener = EventListener(connect=ipc_endpoint, serializer=serializer, bus=bus)
    bus.listen("*", listener)

    def fire_inner() -> None:
        if not fired_inside:
            fired_inside.append(bus.fire("inner", None))

    serializer.fire = fire_inner
    assert bus.fire("outer", None) == [(listener, True)]
    assert fired_inside == [[(listener, False)]]
    assert [e["event"] for e in errors] == ["inner"]
    assert "re-entrant send" in errors[0]["error"]
    assert pull.pull()[0] == "outer"
    listener.close()


def test_keyboard_interrupt_during_a_send_resets_the_socket(ipc_endpoint: str) -> None:
    listener = EventListener(
        connect=ipc_endpoint, serializer=RaisingSerializer(error=KeyboardInterrupt())
    )
    listener.socket  # noqa: B018
    with pytest.raises(KeyboardInterrupt):
        listener("x", 1)
    assert not listener.is_open
    listener.close()


def test_push_error_receiver_that_raises_does_not_reach_the_firing_code(
    ipc_endpoint: str,
) -> None:
    bus = Bus()

    def broken(event: str, payload: Any) -> None:
        raise ZeroDivisionError("broken error handler")

    bus.listen(PUSH_ERROR, broken)
    listener = EventListener(connect=ipc_endpoint, sndtimeo=10, linger=0)
    bus.listen("y", listener)
    assert bus.fire("y", 1) == [(listener, False)]
    listener.close()


def test_second_live_service_on_one_ipc_path_is_refused(ipc_endpoint: str) -> None:
    from zevents import EndpointError

    first = receiving_socket({"bind": ipc_endpoint, "linger": 0})
    first.socket  # noqa: B018
    second = receiving_socket({"bind": ipc_endpoint, "linger": 0})
    with pytest.raises(EndpointError, match="another process is listening"):
        second.socket  # noqa: B018
    first.close()
    second.close()


def test_stale_ipc_socket_file_is_bound_over(short_tmp: Any) -> None:
    import socket

    path = f"{short_tmp}/stale.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(path)  # a socket file nobody listens on, as a killed process leaves
    leftover.close()
    receiving = receiving_socket({"bind": f"ipc://{path}", "linger": 0})
    assert receiving.socket.type == zmq.PULL
    receiving.close()


def test_wait_for_peers_returns_once_every_connect_endpoint_has_one(
    context: Context, short_tmp: Any
) -> None:
    """Sent right after waiting, events reach both peers: none was up only partly."""
    endpoints = [f"ipc://{short_tmp}/a.sock", f"ipc://{short_tmp}/b.sock"]
    pulls = [receiver_socket(context, e) for e in endpoints]
    listener = EventListener(connect=endpoints, linger=0)
    assert listener.wait_for_peers(5.0) == 2
    for i in range(10):
        listener.send("tick", i)
    got = [sorted(p.pull()[1] for _ in range(5)) for p in pulls]
    assert sorted(got[0] + got[1]) == list(range(10))
    listener.close()


def test_wait_for_peers_gives_up_at_its_timeout(short_tmp: Any) -> None:
    listener = EventListener(connect=f"ipc://{short_tmp}/nobody.sock", linger=0)
    started = time.monotonic()
    assert listener.wait_for_peers(0.3) == 0
    assert 0.25 <= time.monotonic() - started < 3
    listener.close()
