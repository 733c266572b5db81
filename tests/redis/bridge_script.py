"""A bridge process for the tests.

Usage: bridge_script.py URL QUEUE ENDPOINT READY_FILE [--confirmed] [--pattern P]
       [--batch N] [--priorities 10,5,1] [--priority P]

Writes READY_FILE once the bridge is running; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

from zevents import EventListener
from zevents.redis import Bridge, RedisQueue


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("url", "queue", "endpoint", "ready"):
        parser.add_argument(name)
    parser.add_argument("--confirmed", action="store_true")
    parser.add_argument("--pattern", default="*")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--priorities")
    parser.add_argument("--priority", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    levels = [int(p) for p in args.priorities.split(",")] if args.priorities else None
    queue = RedisQueue(args.queue, args.url, priorities=levels, socket_timeout=1)
    bridge = Bridge(queue, pattern=args.pattern, batch=args.batch, priority=args.priority)
    bridge.listen(EventListener(bind=args.endpoint, confirmed=args.confirmed))

    def announce() -> None:
        deadline = time.monotonic() + 30
        while not bridge.is_running and time.monotonic() < deadline:
            time.sleep(0.002)
        Path(args.ready).write_text("ready")

    threading.Thread(target=announce, daemon=True).start()
    bridge.run()
    queue.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
