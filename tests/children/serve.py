"""A service process for the tests: records every event its bus sees as a JSON line.

Usage: serve.py --out FILE --ready FILE --listen OPTIONS_JSON_OR_NAME [--listen ...]
       [--poll-timeout S] [--fail PATTERN] [--stop-after-idle N] [--slow PATTERN]
       [--hold FILE]

``--hold FILE``: a receiver of ``hold.*`` events waits until FILE exists (at most 60 s),
so the events behind it queue up in the service's socket.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
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
    parser.add_argument("--stop-on", action="append", default=[])
    parser.add_argument("--drain-timeout", type=float, default=1.0)
    parser.add_argument("--hold")
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

    def hold(event: str, payload: Any) -> None:
        deadline = time.monotonic() + 60
        while not Path(args.hold).exists() and time.monotonic() < deadline:
            time.sleep(0.01)

    bus.listen("*", record)
    if args.hold:
        bus.listen("hold.*", hold)
    for pattern in args.fail:
        bus.listen(pattern, fail)
    for pattern in args.slow:
        bus.listen(pattern, slow)
    if args.stop_after_idle:
        bus.listen("zevents.service.idle", on_idle)
    for pattern in args.stop_on:
        bus.listen(pattern, lambda event, payload: bus.fire(SERVICE_STOP))

    service = EventService(bus, poll_timeout=args.poll_timeout, drain_timeout=args.drain_timeout)
    for item in args.listen:
        listener = EventListener(json.loads(item) if item.startswith("{") else item, bus=bus)
        service.listen(listener)

    def announce_ready() -> None:
        # "ready" only once run() is in its loop: sockets bound, signal handlers in place.
        deadline = time.monotonic() + 30
        while not service.is_running and time.monotonic() < deadline:
            time.sleep(0.002)
        Path(args.ready).write_text(str(os.getpid()))

    threading.Thread(target=announce_ready, daemon=True).start()
    started = time.monotonic()
    service.run()
    out.write(json.dumps({"event": "child.exited", "payload": time.monotonic() - started}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
