"""The shared harness: alternating rounds, figures with ratios, and child processes.

Every comparison runs its contenders in turn (A B A B ..., or A B C D A B C D ... when
several baselines share one zevents side), so slow drifts of a noisy machine touch both
sides alike. A figure keeps every round, and reports medians, min-max and the ratio of
the medians.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Contender pairs per comparison (the issue asks for at least five).
PAIRS = 5
#: The payload body: 100 bytes of text.
BODY = "z" * 100
#: The event name every benchmark fires.
EVENT = "bench.event"


@dataclass
class Figure:
    """One measured comparison.

    Attributes:
        benchmark: The benchmark it belongs to (``throughput``, ``latency``...).
        case: What was measured within it (``ipc``, ``tcp p99``...).
        unit: The unit of the samples.
        zevents: zevents' samples, one per round.
        baseline: The baseline's samples, one per round (empty: no baseline).
        baseline_name: What the baseline is.
        target: The ratio the issue asks for, as ``>= 0.85`` or ``<= 1.3``; empty: none.
        note: Anything the reader needs to weigh the figure.
        ratio_override: A ratio computed otherwise (memory growth, cache flatness).
        subject: What the first samples measure (``zevents``, or a peer shown alone).
    """

    benchmark: str
    case: str
    unit: str
    zevents: list[float]
    baseline: list[float] = field(default_factory=list)
    baseline_name: str = ""
    target: str = ""
    note: str = ""
    ratio_override: float | None = None
    subject: str = "zevents"

    @property
    def ratio(self) -> float:
        """zevents' median over the baseline's median (or the override)."""
        if self.ratio_override is not None:
            return self.ratio_override
        if not self.baseline:
            return float("nan")
        base = statistics.median(self.baseline)
        return statistics.median(self.zevents) / base if base else float("inf")

    @property
    def met(self) -> bool | None:
        """Whether the ratio meets the target; ``None`` without a target."""
        if not self.target:
            return None
        op, _, value = self.target.partition(" ")
        limit = float(value)
        return self.ratio >= limit if op == ">=" else self.ratio <= limit

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary with the raw samples."""
        data = asdict(self)
        data.pop("ratio_override")
        data["zevents_median"] = _median(self.zevents)
        data["zevents_min"] = min(self.zevents) if self.zevents else None
        data["zevents_max"] = max(self.zevents) if self.zevents else None
        data["baseline_median"] = _median(self.baseline)
        data["baseline_min"] = min(self.baseline) if self.baseline else None
        data["baseline_max"] = max(self.baseline) if self.baseline else None
        ratio = self.ratio
        data["ratio"] = None if ratio != ratio else round(ratio, 4)
        data["met"] = self.met
        return data

    def line(self) -> str:
        """One printable line: medians, ranges, ratio and verdict."""
        z = f"{self.subject} {fmt(_median(self.zevents))} [{span(self.zevents)}]"
        b = (
            f"  {self.baseline_name} {fmt(_median(self.baseline))} [{span(self.baseline)}]"
            if self.baseline
            else ""
        )
        verdict = {True: "met", False: "NOT MET", None: ""}[self.met]
        target = f" (target {self.target}: {verdict})" if self.target else ""
        ratio = self.ratio
        ratio_text = "n/a" if ratio != ratio else f"{ratio:.3f}"
        return (
            f"{self.benchmark:<10} {self.case:<34} {self.unit:<9} {z}{b}  "
            f"ratio {ratio_text}{target}"
        )


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt(value: float | None) -> str:
    """A figure with three significant digits and a k/M suffix."""
    if value is None:
        return "-"
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def span(values: Sequence[float]) -> str:
    """``min-max`` of the samples."""
    return f"{fmt(min(values))}-{fmt(max(values))}" if values else "-"


def alternate(contenders: Sequence[Callable[[], T]], rounds: int) -> list[list[T]]:
    """Run the contenders in turn, ``rounds`` times each; their samples, in order."""
    samples: list[list[T]] = [[] for _ in contenders]
    for _ in range(rounds):
        for index, run in enumerate(contenders):
            samples[index].append(run())
    return samples


# --- child processes ------------------------------------------------------------------


class Child:
    """A benchmark child process (``python -m benchmarks.<module> ...``) with a deadline.

    It talks by lines on stdout: ``ready`` once set up, then JSON lines of results; a
    child that takes commands reads them as lines on stdin.
    """

    def __init__(self, module: str, *args: object) -> None:
        self.argv = [sys.executable, "-m", f"benchmarks.{module}", *map(str, args)]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        # stderr goes to a file: a chatty child can never block on a full pipe.
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            env=env,
            start_new_session=True,
        )
        self._buffer = b""

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def read_line(self, timeout: float) -> str:
        """The next stdout line; ``TimeoutError`` (with stderr) past ``timeout`` seconds."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.argv[3:]}: no output in {timeout} s{self._stderr()}")
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(f"{self.argv[3:]} exited early{self._stderr()}")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait for the child's ``ready`` line (other lines, such as banners, are skipped)."""
        deadline = time.monotonic() + timeout
        while self.read_line(max(0.0, deadline - time.monotonic())) != "ready":
            pass

    def result(self, timeout: float) -> Any:
        """The child's next JSON line (lines that are not JSON objects are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if line.startswith("{"):
                return json.loads(line)

    def command(self, line: str) -> None:
        """Write one line to the child's stdin (children that take commands read it)."""
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def _stderr(self) -> str:
        self._errors.seek(0)
        text = self._errors.read().decode(errors="replace").strip()
        return f"\n--- stderr ---\n{text[-3000:]}" if text else ""

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the child (and its process group); kill it past ``timeout``."""
        process = self.process
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with suppress(OSError):
                    stream.close()
        self._errors.close()


@contextmanager
def children() -> Iterator[list[Child]]:
    """A list to put children in; every one is terminated on the way out."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in started:
            child.stop()


@contextmanager
def short_tempdir() -> Iterator[Path]:
    """A temporary directory with a short path, for ipc endpoints (≤ 107 bytes)."""
    path = tempfile.mkdtemp(prefix="zb-", dir="/tmp")
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)


def batches(count: int, size: int = 1000) -> list[range]:
    """The message numbers ``0..count-1`` in runs of ``size`` (the last may be shorter)."""
    return [range(first, min(count, first + size)) for first in range(0, count, size)]


def messages(numbers: range) -> list[tuple[str, dict[str, Any]]]:
    """The benchmark's ``(event, payload)`` of each number, for ``send_many``."""
    return [(EVENT, {"i": i, "body": BODY}) for i in numbers]


def emit(result: object) -> None:
    """Print a child's JSON result line."""
    print(json.dumps(result), flush=True)


def ready() -> None:
    """Print a child's ``ready`` line."""
    print("ready", flush=True)


@dataclass
class Settings:
    """What one run of the suite uses.

    Attributes:
        quick: Smaller counts, for the test suite.
        pairs: Rounds of each contender.
        redis_url: The private redis-server's URL (``None`` before it starts).
    """

    quick: bool = False
    pairs: int = PAIRS
    redis_url: str | None = None

    def count(self, full: T, quick: T) -> T:
        """``full`` or ``quick`` depending on the mode."""
        return quick if self.quick else full


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def endpoints(transport: str, directory: Path, prefix: str) -> Callable[[], str]:
    """A maker of fresh endpoints: ipc files in ``directory``, or free loopback ports."""
    serial = itertools.count()

    def make() -> str:
        if transport == "ipc":
            return f"ipc://{directory}/{prefix}{next(serial)}"
        return f"tcp://127.0.0.1:{free_port()}"

    return make


class Rounds:
    """Counts events in a receiving child that stays up for every round: round ``k`` is
    events ``k * (warmup + count)`` onwards; once its ``count`` events after ``warmup``
    arrived, the child prints their rate."""

    def __init__(self, warmup: int, count: int) -> None:
        self.warmup, self.count = warmup, count
        self.seen = 0
        self._base = 0
        self._start = 0.0

    def hit(self) -> None:
        """One event arrived."""
        self.seen += 1
        done = self.seen - self._base
        if done == self.warmup:
            self._start = time.perf_counter()
        elif done == self.warmup + self.count:
            emit({"rate": self.count / (time.perf_counter() - self._start)})
            self._base = self.seen


def standing_round(receiver: Child, sender: Child, timeout: float = 120.0) -> Callable[[], float]:
    """One round of a receiver and a sender that stay up: the sender is told to ``go``
    (it sends one round's events), and the receiver's rate is read."""

    def one() -> float:
        sender.command("go")
        rate: float = receiver.result(timeout)["rate"]
        return rate

    return one
