"""The machine description, the Markdown table and the chart of a run."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.harness import fmt


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def machine() -> dict[str, Any]:
    """What the run ran on: CPU, cores, memory, OS, and the versions that matter."""
    import zmq

    try:
        import psutil

        memory = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        memory = "unknown"
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
    }
    peers = ("rq", "dramatiq", "celery", "taskiq", "taskiq-redis", "streaq", "saq", "uvloop")
    for package in ("orjson", "blinker", "redis", "hiredis", *peers):
        info[package] = _version(package)
    try:
        from zevents.redis.server import find_redis_server

        out = subprocess.run(
            [find_redis_server(), "--version"], capture_output=True, timeout=10, check=False
        )
        words = out.stdout.decode().split()
        info["redis-server"] = next((w[2:] for w in words if w.startswith("v=")), "unknown")
    except Exception:
        info["redis-server"] = "absent"
    return info


def table(figures: list[dict[str, Any]]) -> str:
    """A Markdown table of figures (as ``Figure.as_dict`` gives them)."""
    rows = [
        "| benchmark | case | unit | zevents median [min-max] | baseline | baseline median "
        "[min-max] | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        z = f"{fmt(f['zevents_median'])} [{fmt(f['zevents_min'])}-{fmt(f['zevents_max'])}]"
        if f["subject"] != "zevents":
            z = f"({f['subject']}) {z}"
        if f["baseline"]:
            b = f"{fmt(f['baseline_median'])} [{fmt(f['baseline_min'])}-{fmt(f['baseline_max'])}]"
        else:
            b = "-"
        ratio = "-" if f["ratio"] is None else f"{f['ratio']:.3g}"
        met = {True: "yes", False: "**no**", None: "-"}[f["met"]]
        rows.append(
            f"| {f['benchmark']} | {f['case']} | {f['unit']} | {z} | "
            f"{f['baseline_name'] or '-'} | {b} | {ratio} | {f['target'] or '-'} | {met} |"
        )
    return "\n".join(rows)


def chart(figures: list[dict[str, Any]], path: Path) -> None:
    """A bar per figure: its ratio against its target, on a log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [f for f in figures if f["ratio"] is not None and f["target"]]
    labels = [f"{f['benchmark']}: {f['case']}" for f in shown]
    # Everything is drawn as "how far past the target": above 1 is better.
    scores = []
    for f in shown:
        op, _, value = f["target"].partition(" ")
        limit = float(value)
        scores.append(f["ratio"] / limit if op == ">=" else limit / f["ratio"])
    colours = ["#2a9d8f" if f["met"] else "#e76f51" for f in shown]
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(shown) + 1.5))
    ax.barh(range(len(shown)), scores, color=colours)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min(0.8, min(scores) * 0.8), max(2.0, max(scores) * 3))  # room for labels
    ax.set_xlabel("margin over the target (ratio / target; for 'at most' targets, target / ratio)")
    ax.set_title("zevents against its baselines: right of the line meets the target")
    for index, (score, f) in enumerate(zip(scores, shown, strict=False)):
        ax.text(score, index, f"  ratio {f['ratio']:.3g}", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
