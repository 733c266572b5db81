"""Receive ``orders.*`` events from other processes and re-fire them into a handler.

Run it in one terminal, then ``python examples/orders_publisher.py`` in another:

    python examples/orders_service.py

It prints each order as it arrives and exits after ``orders.closed`` (or on Ctrl-C).
The endpoint defaults to ``ipc:///tmp/zevents-orders.sock``; pass another as the
first argument (for example ``tcp://127.0.0.1:5560``).
"""

from __future__ import annotations

import sys
from typing import Any

import zevents
from zevents import EventListener, EventService

ENDPOINT = sys.argv[1] if len(sys.argv) > 1 else "ipc:///tmp/zevents-orders.sock"
bus = zevents.Bus("orders-service")


@bus.on("orders.*")
def show(event: str, payload: Any) -> None:
    print(f"{event}: {payload}", flush=True)
    if event == "orders.closed":
        bus.fire(zevents.events.SERVICE_STOP)


service = EventService(bus, poll_timeout=1.0).listen(EventListener(bind=ENDPOINT, confirmed=True))
print(f"waiting for orders on {ENDPOINT}", flush=True)
service.run()
print("service stopped", flush=True)
