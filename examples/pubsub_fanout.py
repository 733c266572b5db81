"""PUB/SUB fan-out: one publisher, two subscribers with different prefixes.

    python examples/pubsub_fanout.py

Starts two subscriber processes (``orders.`` and ``users.``), publishes a mix of
events, and prints what each subscriber got. Subscriptions are prefix matches on the
event name (frame 0). PUB drops messages sent before a subscriber has joined (the
"slow joiner"), so the publisher sends ``sync`` probes until both subscribers answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zevents import EventListener

SUBSCRIBER = """
import json, sys
from zevents import Bus, EventListener, EventService
from zevents.events import SERVICE_STOP
name, endpoint, prefix, out = sys.argv[1:5]
bus = Bus(name)
got = []
def record(event, payload):
    if event == "sync":
        open(out + ".ready", "w").close()
    elif event == "end":
        bus.fire(SERVICE_STOP)
    elif not event.startswith("zevents."):
        got.append(event)
bus.listen("*", record)
listener = EventListener(connect=endpoint, socket_type="sub", subscribe=[prefix, "sync", "end"])
EventService(bus, poll_timeout=0.2).listen(listener).run()
open(out, "w").write(json.dumps(got))
"""


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="zev-fanout-"))
    endpoint = f"ipc://{workdir}/fanout.sock"
    publisher = EventListener(bind=endpoint, socket_type="pub")
    publisher.socket  # bind before the subscribers connect  # noqa: B018
    subscribers = {
        name: (
            workdir / name,
            subprocess.Popen(
                [sys.executable, "-c", SUBSCRIBER, name, endpoint, prefix, str(workdir / name)]
            ),
        )
        for name, prefix in (("orders-sub", "orders."), ("users-sub", "users."))
    }
    deadline = time.monotonic() + 20
    while not all(Path(f"{out}.ready").exists() for out, _ in subscribers.values()):
        if time.monotonic() > deadline:
            print("subscribers did not join in time", file=sys.stderr)
            return 1
        publisher("sync", None)
        time.sleep(0.05)
    for event in ("orders.created", "users.joined", "orders.paid", "users.left", "audit.tick"):
        publisher(event, {"at": time.time()})
    publisher("end", None)
    for name, (out, proc) in subscribers.items():
        proc.wait(timeout=20)
        print(f"{name} got {json.loads(out.read_text())}")
    publisher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
