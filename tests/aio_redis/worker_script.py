"""An async worker process for the multi-process tests.

Usage: worker_script.py URL DIR QUEUE DRIVER KEEP_ALIVE CONCURRENCY

Its ``async def`` receiver for ``job.*`` writes ``DIR/<payload name>.started``, awaits
the payload's ``sleep`` seconds, then writes ``DIR/<name>.done``. It prints ``ready``
once the worker is about to run, and ``stopped`` when ``run()`` returned; zevents' log
lines (INFO and up, message only) go to stdout too.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from zevents.aio.redis import RedisQueue, Worker
from zevents.eventbus import Bus


async def main() -> int:
    url, directory, name, driver, keep_alive, concurrency = sys.argv[1:7]
    handler = logging.StreamHandler(sys.stdout)
    logging.getLogger("zevents").addHandler(handler)
    logging.getLogger("zevents").setLevel(logging.INFO)
    folder = Path(directory)
    bus = Bus()

    async def receiver(event: str, payload: Any) -> None:
        (folder / f"{payload['name']}.started").touch()
        await asyncio.sleep(float(payload.get("sleep", 0)))
        (folder / f"{payload['name']}.done").touch()

    bus.listen("job.*", receiver)
    async with RedisQueue(name, url, driver=driver) as queue:
        worker = Worker(queue, bus, keep_alive=float(keep_alive), concurrency=int(concurrency))
        print("ready", flush=True)
        await worker.run()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
