"""A service process for the tests: records every event its bus sees as a JSON line.

Usage: serve.py --out FILE --ready FILE --listen OPTIONS_JSON_OR_NAME [--listen ...]
       [--poll-timeout S] [--fail PATTERN] [--stop-after-idle N] [--slow PATTERN]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from zevents import Bus, EventListener, EventService
from zevents.events import SERVICE_STOP


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--listen", action="append", default=[])
    parser.add_argument("--poll-timeout", type=float, default=1.0)
    parser.add_argument("--fail", action="append", default=[])
    parser.add_argument("--slow", action="append", default=[])
    parser.add_argument("--stop-after-idle", type=int, default=0)
    args = parser.parse_args()

    bus = Bus("child")
    with Path(args.out).open("a", buffering=1) as out:
        return serve(args, bus, out)


def serve(args: argparse.Namespace, bus: Bus, out: TextIO) -> int:
    idle = 0

    def record(event: str, payload: Any) -> None:
        out.write(json.dumps({"event": event, "payload": payload, "pid": os.getpid()}) + "\n")

    def fail(event: str, payload: Any) -> None:
        raise RuntimeError(f"receiver failed on {event}")

    def slow(event: str, payload: Any) -> None:
        time.sleep(float(payload.get("seconds", 1.0)) if isinstance(payload, dict) else 1.0)

    def on_idle(event: str, payload: Any) -> None:
        nonlocal idle
        idle += 1
        if idle >= args.stop_after_idle:
            bus.fire(SERVICE_STOP)

    bus.listen("*", record)
    for pattern in args.fail:
        bus.listen(pattern, fail)
    for pattern in args.slow:
        bus.listen(pattern, slow)
    if args.stop_after_idle:
        bus.listen("zevents.service.idle", on_idle)

    service = EventService(bus, poll_timeout=args.poll_timeout)
    for item in args.listen:
        listener = EventListener(json.loads(item) if item.startswith("{") else item, bus=bus)
        service.listen(listener)
    for listener in service.listeners:
        listener.socket  # noqa: B018 - bind now, so "ready" means reachable
    Path(args.ready).write_text(str(os.getpid()))
    started = time.monotonic()
    service.run()
    out.write(json.dumps({"event": "child.exited", "payload": time.monotonic() - started}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
