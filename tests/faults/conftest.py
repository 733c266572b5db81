"""Fixtures for the fault-injection tests: real processes, counted messages, figures.

Every test records one line of figures with ``figures(...)``; they are printed at the end
of the run (without ``-s``), and docs/guarantees.md quotes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import child_env, wait_for
from zevents.redis import RedisServer

HERE = Path(__file__).resolve().parent
WORKER_CHILD = HERE / "worker_child.py"
FIGURES = pytest.StashKey[list[str]]()

Figures = Callable[[str], None]


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("fault figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Record one line of figures, printed in the terminal summary."""

    def record(line: str) -> None:
        request.config.stash[FIGURES].append(f"faults: {line}")

    return record


def resident_kib(pid: int) -> int:
    """The resident memory of a process, in KiB (``VmRSS``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the module's own, without persistence."""
    with RedisServer() as server:
        yield server


class Log:
    """The lines the worker children append to one file: ``start I PID ATTEMPT T`` and
    ``done I PID T``; ``read()`` parses what was added since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self.started: list[tuple[int, int, int, float]] = []  # (i, pid, attempt, time)
        self.done: list[tuple[int, int, float]] = []  # (i, pid, time)

    def read(self) -> Log:
        if not self.path.exists():
            return self
        with self.path.open("rb") as file:
            file.seek(self._offset)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        for line in complete.decode().splitlines():
            kind, *fields = line.split()
            if kind == "start":
                self.started.append(
                    (int(fields[0]), int(fields[1]), int(fields[2]), float(fields[3]))
                )
            else:
                self.done.append((int(fields[0]), int(fields[1]), float(fields[2])))
        return self

    def handled(self) -> set[int]:
        return {i for i, _, _ in self.read().done}


class Workers:
    """Worker children (tests/faults/worker_child.py) on one queue; all killed after."""

    def __init__(self, url: str, queue: str, driver: str, log: Path) -> None:
        self.args = [sys.executable, str(WORKER_CHILD), url, queue, driver, str(log)]
        self.procs: list[subprocess.Popen[bytes]] = []
        # Each child's stderr goes to a file (a pipe nobody reads would stop a child
        # that logs more than the pipe holds); ``errors()`` reads them.
        self.logs = log.parent

    def start(self, keep_alive: float = 1.0) -> subprocess.Popen[bytes]:
        with open(self.logs / f"worker-{len(self.procs)}.err", "wb") as stderr:
            proc = subprocess.Popen(
                [*self.args, str(keep_alive)],
                env=child_env(),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.procs.append(proc)
        return proc

    def errors(self, lines: int = 20) -> str:
        """The last ``lines`` lines each child wrote to stderr."""
        tails = []
        for n in range(len(self.procs)):
            text = (self.logs / f"worker-{n}.err").read_text(errors="replace")
            tails.append(f"worker {n}:\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(tails)

    def kill(self, pid: int) -> None:
        proc = next(p for p in self.procs if p.pid == pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture
def workers() -> Iterator[Callable[..., Workers]]:
    """Make ``Workers``; every child they started is stopped after the test."""
    made: list[Workers] = []

    def make(url: str, queue: str, driver: str, log: Path) -> Workers:
        made.append(Workers(url, queue, driver, log))
        return made[-1]

    yield make
    for group in made:
        group.stop_all()


def wait_exists(path: Path, timeout: float = 15.0) -> None:
    """Wait for a file a child writes (its ready file)."""
    wait_for(path.exists, timeout, what=f"{path.name} to appear")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
