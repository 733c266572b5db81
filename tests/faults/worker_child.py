"""A worker process for the fault tests.

Usage: worker_child.py URL QUEUE DRIVER LOG KEEP_ALIVE

Its receiver for ``job.*`` appends ``start I PID ATTEMPT TIME`` to LOG, waits the
payload's ``slow`` seconds on the message's first attempt (the tests kill it then, or
signal it), and appends ``done I PID TIME``. Each line is one ``write`` to a file opened
with ``O_APPEND``, so several workers can share LOG and a SIGKILL leaves whole lines.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from zevents.eventbus import Bus
from zevents.redis import RedisQueue, Worker, current


def main() -> int:
    url, name, driver, log, keep_alive = sys.argv[1:6]
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    pid = os.getpid()
    bus = Bus()

    def receiver(event: str, payload: Any) -> None:
        attempt = current().attempt
        os.write(fd, f"start {payload['i']} {pid} {attempt} {time.time()}\n".encode())
        if attempt == 1 and payload.get("slow"):
            deadline = time.monotonic() + float(payload["slow"])
            while time.monotonic() < deadline:
                time.sleep(0.01)
        os.write(fd, f"done {payload['i']} {pid} {time.time()}\n".encode())

    bus.listen("job.*", receiver)
    with RedisQueue(name, url, driver=driver, socket_timeout=2) as queue:
        Worker(queue, bus, keep_alive=float(keep_alive)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
