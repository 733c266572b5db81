"""Fire ``orders.*`` events locally; an EventListener forwards them to the service.

Start ``python examples/orders_service.py`` first, then:

    python examples/orders_publisher.py

Delivery is confirmed: each fire returns only after the service's handler ran, and a
service that is not running is reported (after 2 seconds) instead of hanging; the
script then exits with status 1.
"""

from __future__ import annotations

import sys
from typing import Any

import zevents
from zevents import EventListener

ENDPOINT = sys.argv[1] if len(sys.argv) > 1 else "ipc:///tmp/zevents-orders.sock"
bus = zevents.Bus("orders-publisher")
failures: list[Any] = []
bus.listen(zevents.events.PUSH_ERROR, lambda event, error: failures.append(error))

# confirmed=True: each fire returns once the service's receivers ran (the service
# listens with confirmed=True too). It also avoids a known libzmq behaviour where an
# ipc PUSH socket can drop its last message when it closes.
with EventListener(connect=ENDPOINT, confirmed=True) as listener:
    bus.listen("orders.*", listener)
    for number in range(1, 4):
        bus.fire("orders.created", {"order": number, "total": 10.5 * number})
        if failures:
            print(f"not delivered: {failures[0]['error']}", file=sys.stderr)
            sys.exit(1)
    bus.fire("orders.item.added", {"order": 1, "sku": "T-SHIRT"})
    bus.fire("orders.closed", {"count": 3})

if failures:
    print(f"not delivered: {failures[0]['error']}", file=sys.stderr)
    sys.exit(1)
print("sent 5 events", flush=True)
