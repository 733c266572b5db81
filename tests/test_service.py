"""EventService in a child process: transports, socket types, confirmations, signals."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.conftest import free_tcp_port
from tests.helpers import wait_for
from zevents import Bus, DeliveryError, EventListener, EventService
from zevents.events import PUSH_ERROR, SERVICE_ERROR, SERVICE_IDLE, SERVICE_STOP


def sender(endpoint: str, **options: Any) -> tuple[Bus, EventListener, list[Any]]:
    bus = Bus("sender")
    errors: list[Any] = []
    bus.listen(PUSH_ERROR, lambda e, p: errors.append(p))
    listener = EventListener(connect=endpoint, **options)
    bus.listen("*", listener)
    return bus, listener, errors


def test_push_pull_events_are_refired_in_order(start: Any, endpoint: str) -> None:
    service = start({"bind": endpoint})
    bus, listener, errors = sender(endpoint)
    for i in range(200):
        bus.fire("orders.created", {"i": i})
    bus.fire("orders.done", None)
    service.wait_events("orders.done")
    assert [row["payload"]["i"] for row in service.events("orders.created")] == list(range(200))
    assert errors == []
    listener.close()


def test_pub_sub_prefix_subscription_filters_by_event_name(start: Any, endpoint: str) -> None:
    service = start({"connect": endpoint, "socket_type": "sub", "subscribe": ["orders.", "sync"]})
    publisher = EventListener(bind=endpoint, socket_type="pub", linger=0)
    # slow joiner: publish until the subscription is in place
    wait_for(lambda: publisher("sync", None) and service.events("sync"), what="subscription")
    publisher("users.created", {"u": 1})
    publisher("orders.created", {"o": 1})
    publisher("orders.item.added", {"o": 2})
    publisher("sync", "end")
    wait_for(lambda: any(row["payload"] == "end" for row in service.events("sync")))
    names = [row["event"] for row in service.events() if not row["event"].startswith("zevents.")]
    names = [name for name in names if name != "sync"]
    assert names == ["orders.created", "orders.item.added"]
    publisher.close()


def test_confirmed_delivery_returns_after_remote_handlers_ran(start: Any, endpoint: str) -> None:
    service = start({"bind": endpoint, "confirmed": True}, slow="slow.*")
    bus, listener, errors = sender(endpoint, confirmed=True, rcvtimeo=5000)
    started = time.monotonic()
    assert bus.fire("slow.job", {"seconds": 0.3}) == [(listener, True)]
    elapsed = time.monotonic() - started
    # the receivers ran before the sender got its answer
    assert service.events("slow.job"), "handled before confirmation"
    assert elapsed >= 0.3
    for i in range(20):
        assert bus.fire("fast", i) == [(listener, True)]
    assert [row["payload"] for row in service.events("fast")] == list(range(20))
    assert errors == []
    listener.close()


def test_confirmed_delivery_times_out_without_receiver(short_tmp: Path) -> None:
    endpoint = f"ipc://{short_tmp}/nobody.sock"
    bus, listener, errors = sender(endpoint, confirmed=True, rcvtimeo=200, sndtimeo=200)
    started = time.monotonic()
    assert bus.fire("lost", 1) == [(listener, False)]
    assert time.monotonic() - started < 3
    assert errors[0]["error_type"] == "DeliveryTimeout"
    assert errors[0]["endpoint"] == endpoint
    listener.close()


def test_confirmed_timeout_then_next_event_goes_through(start: Any, short_tmp: Path) -> None:
    """A peer that takes the message but answers too late: the socket is reset and the
    next event is confirmed normally (no out-of-step answers)."""
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    service = start({"bind": endpoint, "confirmed": True}, slow="slow")
    bus, listener, errors = sender(endpoint, confirmed=True, rcvtimeo=300)
    assert bus.fire("slow", {"seconds": 1.0}) == [(listener, False)]
    assert errors[0]["error_type"] == "DeliveryTimeout"
    assert not listener.is_open  # the socket was reset
    # once the service is free again, the same listener is confirmed normally
    wait_for(lambda: bus.fire("probe", None) == [(listener, True)], what="service free")
    for i in range(3):
        assert bus.fire("after", i) == [(listener, True)]
    assert [row["payload"] for row in service.events("after")] == [0, 1, 2]
    listener.close()


def test_confirmed_remote_receiver_raising_reports_remote_error(
    start: Any, endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = start({"bind": endpoint, "confirmed": True}, fail="explode.*")
    bus, listener, errors = sender(endpoint, confirmed=True, rcvtimeo=5000)
    with caplog.at_level(logging.WARNING, logger="zevents.listener"):
        assert bus.fire("explode.now", {"x": 1}) == [(listener, False)]
    assert errors[0]["error_type"] == "RemoteError"
    # delivered, so the log does not say "could not deliver"
    assert [r.getMessage().split(": ")[0] for r in caplog.records] == [
        f"'explode.now' was delivered to {endpoint}; the remote handler failed"
    ]
    assert "RuntimeError: receiver failed on explode.now" in errors[0]["error"]
    # the next event goes through
    assert bus.fire("calm", 2) == [(listener, True)]
    assert service.events("calm")[0]["payload"] == 2
    (reported,) = service.events(SERVICE_ERROR)
    assert reported["payload"]["event"] == "explode.now"
    listener.close()


def test_several_sockets_on_one_service(start: Any, short_tmp: Path) -> None:
    ipc = f"ipc://{short_tmp}/a.sock"
    tcp = f"tcp://127.0.0.1:{free_tcp_port()}"
    service = start({"bind": ipc}, {"bind": tcp, "confirmed": True})
    bus_a, a, _ = sender(ipc)
    bus_b, b, _ = sender(tcp, confirmed=True)
    bus_a.fire("from.ipc", 1)
    assert bus_b.fire("from.tcp", 2) == [(b, True)]
    service.wait_events("from.ipc")
    service.wait_events("from.tcp")
    a.close()
    b.close()


def test_idle_event_fires_every_poll_timeout(start: Any, ipc_endpoint: str) -> None:
    started = time.monotonic()
    service = start({"bind": ipc_endpoint}, poll_timeout=0.2, stop_after_idle=3)
    assert service.wait_exit(10) == 0
    idles = service.events(SERVICE_IDLE)
    assert len(idles) == 3
    assert time.monotonic() - started >= 0.6
    assert all(row["payload"]["idle_for"] >= 0.15 for row in idles)


def test_remote_stop_event_stops_the_service(start: Any, endpoint: str) -> None:
    service = start({"bind": endpoint}, poll_timeout=30)
    bus, listener, _ = sender(endpoint)
    bus.fire("before.stop", 1)
    bus.fire(SERVICE_STOP)
    assert service.wait_exit(10) == 0
    assert service.events("before.stop")
    assert service.events("child.exited")
    listener.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_service_promptly_with_exit_zero(
    start: Any, ipc_endpoint: str, signum: int
) -> None:
    service = start({"bind": ipc_endpoint}, poll_timeout=60)
    sent = time.monotonic()
    service.send_signal(signum)
    assert service.wait_exit(10) == 0
    assert time.monotonic() - sent < 3
    assert service.events("child.exited")


def test_signal_lets_event_in_hand_finish(start: Any, ipc_endpoint: str) -> None:
    service = start({"bind": ipc_endpoint}, poll_timeout=60, slow="slow")
    bus, listener, _ = sender(ipc_endpoint)
    bus.fire("slow", {"seconds": 1.0})
    service.wait_events("slow")  # recorded before the slow receiver starts
    service.send_signal(signal.SIGTERM)
    assert service.wait_exit(10) == 0
    names = [row["event"] for row in service.events()]
    assert names[-1] == "child.exited"
    assert service.events("child.exited")[0]["payload"] >= 1.0
    listener.close()


def test_sighup_is_ignored(start: Any, ipc_endpoint: str) -> None:
    service = start({"bind": ipc_endpoint}, poll_timeout=0.1)
    service.send_signal(signal.SIGHUP)
    # still serving: events keep arriving after the SIGHUP
    bus, listener, _ = sender(ipc_endpoint)
    bus.fire("after.hup", 1)
    service.wait_events("after.hup")
    assert service.proc.poll() is None
    service.send_signal(signal.SIGTERM)
    assert service.wait_exit(10) == 0
    listener.close()


def test_malformed_frames_fire_service_error_and_service_goes_on(
    start: Any, endpoint: str, context: zmq.Context[zmq.Socket[bytes]]
) -> None:
    service = start({"bind": endpoint})
    raw = context.socket(zmq.PUSH)
    raw.linger = 1000
    raw.connect(endpoint)
    raw.send_multipart([b"\xff\xfe-not-utf8", b"1"])
    raw.send_multipart([b"bad.json", b"{nope"])
    raw.send_multipart([b""])
    raw.send_multipart([b"good", b'{"ok":1}'])
    service.wait_events("good")
    errors = service.wait_events(SERVICE_ERROR, 3)
    assert "not UTF-8" in errors[0]["payload"]["error"]
    assert errors[1]["payload"]["event"] == "bad.json"
    assert "cannot be decoded" in errors[1]["payload"]["error"]
    assert "empty event name" in errors[2]["payload"]["error"]
    assert service.events("good")[0]["payload"] == {"ok": 1}
    assert service.proc.poll() is None


def test_malformed_confirmed_message_gets_an_error_answer(
    start: Any, ipc_endpoint: str, context: zmq.Context[zmq.Socket[bytes]]
) -> None:
    from zevents.eventsocket import TOKEN_MARKER

    start({"bind": ipc_endpoint, "confirmed": True})
    raw = context.socket(zmq.DEALER)
    raw.linger = 0
    raw.rcvtimeo = 5000
    raw.connect(ipc_endpoint)
    token = TOKEN_MARKER + b"\x00" * 7 + b"\x09"
    raw.send_multipart([b"broken", b"{", token])
    answer = raw.recv_multipart()
    assert answer[:2] == [b"zevents.confirmed", token]
    assert b'"ok":false' in answer[2]
    assert b"cannot be decoded" in answer[2]


def test_receiver_raising_fires_service_error_and_service_goes_on(
    start: Any, ipc_endpoint: str
) -> None:
    service = start({"bind": ipc_endpoint}, fail="bad.*")
    bus, listener, _ = sender(ipc_endpoint)
    bus.fire("bad.one", 1)
    bus.fire("fine", 2)
    service.wait_events("fine")
    (error,) = service.wait_events(SERVICE_ERROR)
    assert error["payload"]["event"] == "bad.one"
    assert error["payload"]["error"] == "RuntimeError: receiver failed on bad.one"
    listener.close()


def test_service_listens_to_config_file_connection(
    start: Any, short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"ipc://{short_tmp}/configured.sock"
    (short_tmp / "zevents.toml").write_text(
        f'[connections.inbox]\nbind = "{endpoint}"\n\n'
        f'[connections.outbox]\nconnect = "{endpoint}"\nsndtimeo = 1000\n'
    )
    service = start("inbox", cwd=str(short_tmp))
    monkeypatch.chdir(short_tmp)
    bus = Bus()
    listener = EventListener("outbox")
    bus.listen("*", listener)
    bus.fire("configured", {"ok": True})
    assert service.wait_events("configured")[0]["payload"] == {"ok": True}
    listener.close()


def test_events_already_received_are_handled_when_the_service_stops(
    start: Any, ipc_endpoint: str
) -> None:
    """A stop does not drop what the socket already holds (its senders think it sent)."""
    service = start({"bind": ipc_endpoint}, poll_timeout=30, slow="first", stop_on="first")
    bus, listener, errors = sender(ipc_endpoint)
    bus.fire("first", {"seconds": 0.5})  # the service stops after this one
    for i in range(300):
        bus.fire("queued", i)  # all arrive while "first" is being handled
    assert service.wait_exit(10) == 0
    assert [row["payload"] for row in service.events("queued")] == list(range(300))
    assert errors == []
    listener.close()


def test_drain_timeout_zero_closes_at_once(start: Any, ipc_endpoint: str) -> None:
    service = start(
        {"bind": ipc_endpoint}, poll_timeout=30, slow="first", stop_on="first", drain_timeout=0
    )
    bus, listener, _ = sender(ipc_endpoint)
    bus.fire("first", {"seconds": 0.5})
    for i in range(50):
        bus.fire("queued", i)
    assert service.wait_exit(10) == 0
    assert service.events("queued") == []
    listener.close()


def in_process_service(endpoint: str, **options: Any) -> EventService:
    service = EventService(Bus("local"), poll_timeout=options.pop("poll_timeout", 0.05))
    service.listen(EventListener(bind=endpoint, linger=0, **options))
    return service


def test_stop_before_run_makes_run_return_at_once(ipc_endpoint: str) -> None:
    service = in_process_service(ipc_endpoint)
    service.stop()
    started = time.monotonic()
    service.run()
    assert time.monotonic() - started < 1
    assert not service.is_running


def test_service_can_run_again_and_leaves_no_receivers_behind(ipc_endpoint: str) -> None:
    service = in_process_service(ipc_endpoint)
    idles = 0

    def on_idle(event: str, payload: Any) -> None:
        nonlocal idles
        idles += 1
        if idles in (2, 4):
            service.bus.fire(SERVICE_STOP)

    service.bus.listen(SERVICE_IDLE, on_idle)
    service.run()
    assert service.bus.receivers(SERVICE_STOP) == []
    service.bus.fire(SERVICE_STOP)  # a stop fired between runs must not stop the next run
    service.run()
    assert idles == 4


def test_run_off_the_main_thread_stops_from_another_thread(ipc_endpoint: str) -> None:
    service = in_process_service(ipc_endpoint, poll_timeout=30)
    thread = threading.Thread(target=service.run)
    thread.start()
    wait_for(lambda: service.is_running, what="service running")
    started = time.monotonic()
    service.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - started < 2


def test_listen_to_signals_with_custom_handler(ipc_endpoint: str) -> None:
    service = in_process_service(ipc_endpoint, poll_timeout=30)
    seen: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        seen.append(signum)
        service.stop()

    service.listen_to_signals([signal.SIGUSR1], handler, ignore=())
    previous = signal.getsignal(signal.SIGUSR1)
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGUSR1))
    timer.start()
    service.run()
    timer.join()
    assert seen == [signal.SIGUSR1]
    assert signal.getsignal(signal.SIGUSR1) == previous  # restored after run()


def test_service_errors_for_bad_use() -> None:
    from zevents import ConfigError, ServiceError

    with pytest.raises(ServiceError, match="no listener"):
        EventService(Bus()).run()
    with pytest.raises(ConfigError, match="poll_timeout"):
        EventService(Bus(), poll_timeout=0.0001)
    with pytest.raises(ConfigError, match="poll_timeout"):
        EventService(Bus(), poll_timeout=float("nan"))


def test_send_raises_typed_errors_that_say_whether_the_event_went_out(
    start: Any, short_tmp: Path
) -> None:
    """``send`` raises instead of reporting: DeliveryTimeout.sent tells "no peer took it"
    (False) from "sent, not confirmed" (True); RemoteError means delivered and failed."""
    from zevents import DeliveryTimeout, RemoteError

    nobody = EventListener(connect=f"ipc://{short_tmp}/nobody.sock", sndtimeo=50, linger=0)
    with pytest.raises(DeliveryTimeout, match="sndtimeo=50") as no_peer:
        nobody.send("x", 1)
    assert no_peer.value.sent is False
    assert no_peer.value.endpoint == f"ipc://{short_tmp}/nobody.sock"
    nobody.close()

    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    start({"bind": endpoint, "confirmed": True}, slow="slow", fail="explode.*")
    listener = EventListener(connect=endpoint, confirmed=True, rcvtimeo=300, linger=0)
    with pytest.raises(DeliveryTimeout, match="no confirmation") as late:
        listener.send("slow", {"seconds": 1.0})
    assert late.value.sent is True
    assert late.value.endpoint == endpoint
    wait_for(lambda: _sends(listener, "probe"), what="service free")
    with pytest.raises(RemoteError, match=r"receiver failed on explode\.now"):
        listener.send("explode.now", 1)
    listener.send("calm", 2)  # returns: confirmed
    listener.close()


def _sends(listener: EventListener, event: str) -> bool:
    try:
        listener.send(event, None)
    except DeliveryError:
        return False
    return True


def test_a_listener_given_to_a_service_is_not_its_receiving_socket(ipc_endpoint: str) -> None:
    """The service builds its own receiving socket from the listener's options; the
    listener keeps its sending role (and opens nothing)."""
    listener = EventListener(bind=ipc_endpoint, linger=0)
    service = EventService(Bus()).listen(listener)
    (receiving,) = service.listeners
    assert receiving.socket_type == "pull"
    assert receiving.endpoints == [ipc_endpoint]
    assert not listener.is_open
    receiving.close()


def test_a_service_removes_the_ipc_socket_files_it_bound_on_a_clean_stop(
    start: Any, short_tmp: Path
) -> None:
    path = short_tmp / "service.sock"
    service = start({"bind": f"ipc://{path}"})
    assert path.exists()
    service.send_signal(signal.SIGTERM)
    assert service.wait_exit() == 0
    assert not path.exists()


def test_closing_leaves_a_socket_file_that_another_socket_took_over(short_tmp: Path) -> None:
    """Only the file this socket bound is removed, not one bound later at that path."""
    import socket

    path = short_tmp / "taken.sock"
    receiving = EventService(Bus()).listen({"bind": f"ipc://{path}", "linger": 0}).listeners[0]
    receiving.socket  # noqa: B018
    os.unlink(path)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other.bind(str(path))
    try:
        receiving.close()
        assert path.exists()
    finally:
        other.close()
