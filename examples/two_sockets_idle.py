"""One service, two sockets (tcp PULL and confirmed ipc ROUTER), with an idle handler.

    python examples/two_sockets_idle.py

The service polls both sockets at once. A helper process sends one event on each;
the idle handler, fired every ``poll_timeout`` (0.5 s) without an event, stops the
service after two quiet periods (or after 20 s if the sender never shows up).

The plain (unconfirmed) PUSH uses tcp: over ipc, libzmq can drop the last message of
a PUSH socket that closes right after sending; confirmed delivery is safe on both.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
from typing import Any

from zevents import Bus, EventListener, EventService
from zevents.events import SERVICE_IDLE, SERVICE_STOP

SENDER = """
import sys
from zevents import EventListener
with EventListener(connect=sys.argv[1]) as plain:  # tcp
    plain("sensor.reading", {"celsius": 21.5})
with EventListener(connect=sys.argv[2], confirmed=True) as confirmed:  # ipc
    print("confirmed:", confirmed("billing.invoiced", {"invoice": 42}), flush=True)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> int:
    tcp = f"tcp://127.0.0.1:{free_port()}"
    ipc = f"ipc://{tempfile.mkdtemp(prefix='zev-two-')}/confirmed.sock"
    bus = Bus("two-sockets")
    received: list[str] = []
    quiet = 0
    waited = 0

    @bus.on("*")
    def show(event: str, payload: Any) -> None:
        if not event.startswith("zevents."):
            received.append(event)
            print(f"received {event}: {payload}", flush=True)

    @bus.on(SERVICE_IDLE)
    def on_idle(event: str, payload: Any) -> None:
        nonlocal quiet, waited
        if len(received) < 2:
            waited += 1  # still waiting for the sender
            if waited > 40:
                bus.fire(SERVICE_STOP)
            return
        quiet += 1
        print(f"idle for {payload['idle_for']:.1f}s", flush=True)
        if quiet == 2:
            bus.fire(SERVICE_STOP)

    service = EventService(bus, poll_timeout=0.5)
    service.listen(EventListener(bind=tcp))
    service.listen(EventListener(bind=ipc, confirmed=True))
    for listener in service.listeners:
        listener.socket  # bind now, before the sender starts  # noqa: B018
    sender = subprocess.Popen([sys.executable, "-c", SENDER, tcp, ipc])
    try:
        service.run()
    finally:
        sender.wait(timeout=10)
    print(f"stopped after {sorted(received)}", flush=True)
    return 0 if sorted(received) == ["billing.invoiced", "sensor.reading"] else 1


if __name__ == "__main__":
    sys.exit(main())
