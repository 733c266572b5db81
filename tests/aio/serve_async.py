"""An asyncio service process for the tests: records every event its bus sees as a JSON
line, with ``async def`` receivers.

Usage: serve_async.py --out FILE --ready FILE --listen OPTIONS_JSON [--listen ...]
       [--fail PATTERN] [--slow PATTERN]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from zevents import Bus
from zevents.aio import EventService


async def serve(args: argparse.Namespace) -> None:
    bus = Bus("child")
    with Path(args.out).open("a", buffering=1) as out:

        async def record(event: str, payload: Any) -> None:
            out.write(json.dumps({"event": event, "payload": payload, "pid": os.getpid()}) + "\n")

        async def fail(event: str, payload: Any) -> None:
            raise RuntimeError(f"receiver failed on {event}")

        async def slow(event: str, payload: Any) -> None:
            await asyncio.sleep(float(payload.get("seconds", 1.0)))

        bus.listen("*", record)
        for pattern in args.fail:
            bus.listen(pattern, fail)
        for pattern in args.slow:
            bus.listen(pattern, slow)
        service = EventService(bus, poll_timeout=args.poll_timeout)
        for options in args.listen:
            service.listen(json.loads(options))
        for listener in service.listeners:
            _ = listener.socket  # bound before "ready"
        run = asyncio.create_task(service.run())
        while not service.is_running and not run.done():
            await asyncio.sleep(0.002)
        Path(args.ready).write_text(str(os.getpid()))
        await run
        out.write(json.dumps({"event": "child.exited", "payload": None}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--listen", action="append", default=[])
    parser.add_argument("--fail", action="append", default=[])
    parser.add_argument("--slow", action="append", default=[])
    parser.add_argument("--poll-timeout", type=float, default=1.0)
    asyncio.run(serve(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
