"""Run the benchmark suite: ``python -m benchmarks [--quick] [--json FILE]``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    aio,
    aio_peers,
    dispatch,
    enqueue,
    latency,
    memory,
    peer_bulk,
    processing,
    report,
    safe,
    throughput,
)
from benchmarks.harness import PAIRS, Figure, Settings

#: Benchmark name -> what runs it, in the order of the issue.
BENCHMARKS: dict[str, Callable[[Settings], list[Figure]]] = {
    "throughput": throughput.run,
    "latency": latency.run,
    "dispatch": dispatch.run,
    "enqueue": enqueue.run,
    "processing": processing.run,
    "memory": memory.run,
    "aio": aio.run,
    "aio_peers": lambda settings: aio_peers.run(settings) + peer_bulk.run(settings),
    "safe": safe.run,
}
_NEEDS_REDIS = {"enqueue", "processing", "memory", "aio_peers", "safe"}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts (about a minute)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write every figure here")
    parser.add_argument(
        "--only", action="append", choices=list(BENCHMARKS), help="run only these benchmarks"
    )
    parser.add_argument("--pairs", type=int, default=PAIRS, help="rounds of each contender")
    parser.add_argument("--chart", type=Path, metavar="PNG", help="draw the ratios here")
    parser.add_argument("--table", type=Path, metavar="FILE", help="write a Markdown table here")
    return parser.parse_args(argv)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM (``kill``, a CI timeout) ends the run as Ctrl-C does: the redis-servers
    and child processes it started are stopped on the way out, not left running."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    settings = Settings(quick=args.quick, pairs=max(1, args.pairs))
    names = args.only or list(BENCHMARKS)
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    info = report.machine()
    print(f"zevents benchmarks ({'quick' if args.quick else 'full'} run, {settings.pairs} pairs)")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    started = time.monotonic()
    figures: list[Figure] = []
    server = None
    try:
        if _NEEDS_REDIS & set(names):
            from zevents.redis import RedisServer

            server = RedisServer().start()
            settings.redis_url = server.url
        for name in names:
            began = time.monotonic()
            print(f"--- {name}", flush=True)
            for figure in BENCHMARKS[name](settings):
                figures.append(figure)
                print(figure.line(), flush=True)
            print(f"    ({time.monotonic() - began:.1f} s)", flush=True)
    finally:
        if server is not None:
            server.stop()
    elapsed = time.monotonic() - started
    result: dict[str, Any] = {
        "command": command.strip(),
        "quick": args.quick,
        "pairs": settings.pairs,
        "seconds": round(elapsed, 1),
        "machine": info,
        "figures": [figure.as_dict() for figure in figures],
    }
    unmet = [f for f in figures if f.met is False]
    targeted = [f for f in figures if f.met is not None]
    print(f"done in {elapsed:.0f} s: {len(targeted) - len(unmet)} of {len(targeted)} targets met")
    for figure in unmet:
        print(f"  not met: {figure.benchmark} {figure.case}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    if args.chart is not None:
        report.chart(result["figures"], args.chart)
    if args.table is not None:
        args.table.write_text(report.table(result["figures"]) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
