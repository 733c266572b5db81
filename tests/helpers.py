"""Helpers shared by the tests: polling with a deadline, child service processes, and a
Redis server's command counts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHILD_SERVICE = Path(__file__).resolve().parent / "children" / "serve.py"


def wait_for(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def command_calls(client: Any, command: str) -> int:
    """How many times the server of ``client`` (a sync redis-py client) ran ``command``
    (lower case, as ``INFO commandstats`` names it: ``evalsha``, ``wait``, ``ping``)."""
    stats: Any = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def script_processes(script: Path, *first: str) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """A way to start ``script`` with ``first`` and more arguments (stdout and stderr in
    one pipe, ``env`` over ``child_env()``); each is SIGKILLed, if still running, on exit."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(script), *first, *args],
            env={**child_env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()


class ServiceProcess:
    """A child process running an ``EventService`` (tests/children/serve.py).

    Every event its bus sees is appended to a JSON-lines file; ``events()`` reads it.
    """

    def __init__(self, tmp: Path, *listen: dict[str, Any] | str, **options: Any) -> None:
        self.cwd = options.pop("cwd", None)
        self.out = tmp / f"events-{id(self)}.jsonl"
        self.ready = tmp / f"ready-{id(self)}"
        args = [sys.executable, str(CHILD_SERVICE), "--out", str(self.out)]
        args += ["--ready", str(self.ready)]
        for item in listen:
            args += ["--listen", item if isinstance(item, str) else json.dumps(item)]
        for key, value in options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif isinstance(value, (list, tuple)):
                for v in value:
                    args += [flag, str(v)]
            else:
                args += [flag, str(value)]
        self.proc = subprocess.Popen(
            args,
            env=child_env(),
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self, timeout: float = 10.0) -> ServiceProcess:
        def ready() -> bool:
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise AssertionError(f"service exited early ({self.proc.returncode}): {err}")
            return self.ready.exists()

        wait_for(ready, timeout, what="service ready")
        return self

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        lines = self.out.read_text().splitlines()
        # the last line may be half-written while the child appends
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line))
            except ValueError:
                break
        if name is not None:
            rows = [row for row in rows if row["event"] == name]
        return rows

    def wait_events(self, name: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        rows: list[Any] = wait_for(
            lambda: rows if len(rows := self.events(name)) >= count else None,
            timeout,
            what=f"{count} x {name!r}",
        )
        return rows

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait_exit(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=10)
