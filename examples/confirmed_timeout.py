"""Confirmed delivery when the receiver is down, then up.

    python examples/confirmed_timeout.py

First fires an event at an endpoint nobody serves: after ``rcvtimeo`` (500 ms here)
the listener gives up and fires ``zevents.push.error`` instead of hanging. Then it
starts a service process and fires again: this time the fire returns ``True`` once the
remote handler has run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from typing import Any

from zevents import Bus, EventListener

SERVICE = """
import sys
from zevents import Bus, EventListener, EventService
bus = Bus("remote")
bus.listen("greet", lambda event, payload: print("remote handled", payload, flush=True))
bus.listen("greet", lambda event, payload: bus.fire("zevents.service.stop"))
EventService(bus).listen(EventListener(bind=sys.argv[1], confirmed=True)).run()
"""


def main() -> int:
    endpoint = f"ipc://{tempfile.mkdtemp(prefix='zev-confirm-')}/service.sock"
    bus = Bus("local")
    errors: list[Any] = []
    bus.listen("zevents.push.error", lambda event, error: errors.append(error))
    # sndtimeo: how long to wait for a peer; rcvtimeo: how long to wait for the answer.
    listener = EventListener(connect=endpoint, confirmed=True, sndtimeo=500, rcvtimeo=3000)
    bus.listen("greet", listener)

    started = time.monotonic()
    [(_, delivered)] = bus.fire("greet", {"attempt": 1})
    elapsed = time.monotonic() - started
    print(f"receiver down: delivered={delivered} after {elapsed:.1f}s: {errors[-1]['error']}")

    service = subprocess.Popen([sys.executable, "-c", SERVICE, endpoint])
    try:
        # The service needs a moment to start: retry, as a caller would.
        for attempt in range(2, 40):
            [(_, delivered)] = bus.fire("greet", {"attempt": attempt})
            if delivered:
                break
        print(f"receiver up: delivered and handled = {delivered} (attempt {attempt})")
        service.wait(timeout=10)
    finally:
        if service.poll() is None:
            service.kill()
        listener.close()
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
