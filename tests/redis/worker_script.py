"""A worker process for the multi-process tests.

Usage: worker_script.py URL DIR QUEUE DRIVER KEEP_ALIVE [MAX_MESSAGES]

Its receiver for ``job.*`` writes ``DIR/<payload name>.started``, sleeps the payload's
``sleep`` seconds, then writes ``DIR/<name>.done`` (with its pid). It prints ``ready``
once the worker is about to run. ``ZEVENTS_TEST_FORK=1`` runs receivers in a child.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from zevents.eventbus import Bus
from zevents.redis import RedisQueue, Worker


def main() -> int:
    url, directory, name, driver, keep_alive = sys.argv[1:6]
    max_messages = int(sys.argv[6]) if len(sys.argv) > 6 else None
    folder = Path(directory)
    bus = Bus()

    def receiver(event: str, payload: Any) -> None:
        (folder / f"{payload['name']}.started").write_text(str(os.getpid()))
        deadline = time.monotonic() + float(payload.get("sleep", 0))
        while time.monotonic() < deadline:
            time.sleep(0.01)
        (folder / f"{payload['name']}.done").write_text(str(os.getpid()))

    bus.listen("job.*", receiver)
    with RedisQueue(name, url, driver=driver) as queue:
        fork = os.environ.get("ZEVENTS_TEST_FORK") == "1"
        worker = Worker(
            queue, bus, keep_alive=float(keep_alive), max_messages=max_messages, fork=fork
        )
        print("ready", flush=True)
        worker.run()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
