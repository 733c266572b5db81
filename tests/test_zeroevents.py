"""confirmed="zeroevents": the PHP package zeroevents' own confirmations, both ways.

The "PHP" peers here are raw zmq sockets sending and expecting the frames zeroevents
puts on the wire (written out as bytes): frame 0 the event name, then one JSON frame per
argument; the confirmation is ``zeroevents.confirmed`` with the event name as its one
argument, and carries no token.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.helpers import ServiceProcess
from zevents import Bus, ConfigError, DeliveryTimeout, EventListener, EventService

Context = zmq.Context[zmq.Socket[bytes]]


def raw(context: Context, kind: int, **endpoints: str) -> zmq.Socket[bytes]:
    sock = context.socket(kind)
    sock.linger = 0
    sock.rcvtimeo = 5000
    sock.sndtimeo = 5000
    if "bind" in endpoints:
        sock.bind(endpoints["bind"])
    if "connect" in endpoints:
        sock.connect(endpoints["connect"])
    return sock


def test_a_php_confirmed_sender_gets_its_confirmation_from_a_zevents_service(
    context: Context, short_tmp: Path, services: list[ServiceProcess]
) -> None:
    endpoint = f"ipc://{short_tmp}/php.sock"
    service = ServiceProcess(short_tmp, {"bind": endpoint, "confirmed": "zeroevents"})
    services.append(service.wait_ready())
    php = raw(context, zmq.DEALER, connect=endpoint)
    # Event::fire('user.login', [$user, $ip]) with 'confirmed' => true
    php.send_multipart([b"user.login", b'{"id":7,"name":"ada"}', b'"10.0.0.5"'])
    assert php.recv_multipart() == [b"zeroevents.confirmed", b'"user.login"']
    (row,) = service.events("user.login")  # answered after the receivers ran
    assert row["payload"] == [{"id": 7, "name": "ada"}, "10.0.0.5"]


def test_a_zevents_service_in_that_mode_still_answers_zevents_senders(
    short_tmp: Path, services: list[ServiceProcess]
) -> None:
    endpoint = f"ipc://{short_tmp}/both.sock"
    service = ServiceProcess(short_tmp, {"bind": endpoint, "confirmed": "zeroevents"})
    services.append(service.wait_ready())
    for confirmed in (True, "zeroevents"):
        listener = EventListener(connect=endpoint, confirmed=confirmed, rcvtimeo=5000)
        listener.send("both", str(confirmed))
        listener.close()
    assert [row["payload"] for row in service.events("both")] == ["True", "zeroevents"]


def test_a_zevents_sender_accepts_a_php_services_confirmation(
    context: Context, short_tmp: Path
) -> None:
    endpoint = f"ipc://{short_tmp}/php-service.sock"
    php = raw(context, zmq.ROUTER, bind=endpoint)
    seen: list[list[bytes]] = []

    def php_service() -> None:
        # pull(): on receipt, push zeroevents.confirmed [original_event] to the address
        frames = php.recv_multipart()
        seen.append(frames)
        php.send_multipart([frames[0], b"zeroevents.confirmed", b'"orders.created"'])

    thread = threading.Thread(target=php_service)
    thread.start()
    listener = EventListener(connect=endpoint, confirmed="zeroevents", rcvtimeo=5000)
    listener.send("orders.created", {"id": 1})
    thread.join(5)
    # no token frame: the PHP side would read it as a trailing null argument
    assert seen[0][1:] == [b"orders.created", b'{"id":1}']
    listener.close()


def test_a_confirmation_for_another_event_is_not_taken_and_none_times_out(
    context: Context, short_tmp: Path
) -> None:
    endpoint = f"ipc://{short_tmp}/wrong.sock"
    php = raw(context, zmq.ROUTER, bind=endpoint)

    def php_service() -> None:
        frames = php.recv_multipart()
        php.send_multipart([frames[0], b"zeroevents.confirmed", b'"something.else"'])

    thread = threading.Thread(target=php_service)
    thread.start()
    listener = EventListener(connect=endpoint, confirmed="zeroevents", rcvtimeo=300)
    with pytest.raises(DeliveryTimeout, match="no zeroevents confirmation") as info:
        listener.send("orders.created", 1)
    assert info.value.sent is True
    thread.join(5)
    listener.close()


def test_zevents_sender_and_service_in_zeroevents_mode(ipc_endpoint: str) -> None:
    bus = Bus()
    got: list[Any] = []
    bus.listen("ping", lambda e, p: got.append(p))
    service = EventService(bus, poll_timeout=0.05).listen(
        EventListener(bind=ipc_endpoint, confirmed="zeroevents")
    )
    service.listeners[0].socket  # noqa: B018
    thread = threading.Thread(target=service.run)
    thread.start()
    listener = EventListener(connect=ipc_endpoint, confirmed="zeroevents", rcvtimeo=5000)
    try:
        for i in range(3):
            listener.send("ping", i)  # returns once confirmed
        assert got == [0, 1, 2]
    finally:
        listener.close()
        service.stop()
        thread.join(10)


def test_zeroevents_mode_has_no_window_and_takes_only_known_values() -> None:
    with pytest.raises(ConfigError, match="one event is in flight"):
        EventListener(connect="ipc:///tmp/x.sock", confirmed="zeroevents", window=10)
    with pytest.raises(ConfigError, match="true or false"):
        EventListener(connect="ipc:///tmp/x.sock", confirmed="php")
