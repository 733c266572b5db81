"""Fixtures for the command-line tests: real ``python -m zevents`` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import wait_for

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Generous: a loaded 2-core machine starts Python slowly; tests poll, so this only
# bounds how long a failing test takes.
DEADLINE = 15.0


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI child: the repo and tests/cli importable."""
    env = dict(os.environ)
    paths = [str(HERE), str(REPO)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("ZEVENTS_CONFIG", None)
    env.update(extra)
    return env


def run_cli(
    *args: str,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m zevents ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "zevents", *args],
        input=input,
        capture_output=True,
        env=env or cli_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def wait_until(predicate: Callable[[], object], what: str, timeout: float = DEADLINE) -> None:
    """``tests.helpers.wait_for`` with the CLI tests' longer deadline."""
    wait_for(predicate, timeout, what=what)


class CliProcess:
    """A running ``python -m zevents`` child whose output is collected by threads."""

    def __init__(self, args: Sequence[str], env: dict[str, str], cwd: Path | None) -> None:
        self.args = list(args)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zevents", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.stdout: list[bytes] = []
        self.stderr: list[bytes] = []
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._threads = [
            threading.Thread(target=self._collect, args=(self.proc.stdout, self.stdout)),
            threading.Thread(target=self._collect, args=(self.proc.stderr, self.stderr)),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    @staticmethod
    def _collect(stream: object, into: list[bytes]) -> None:
        try:
            for line in stream:  # type: ignore[attr-defined]
                into.append(line)
        except ValueError:  # closed by the test
            pass

    @property
    def stderr_text(self) -> str:
        return b"".join(self.stderr).decode(errors="replace")

    def events(self) -> list[dict[str, object]]:
        """The JSON event lines printed so far."""
        return [orjson.loads(line) for line in list(self.stdout)]

    def wait_for_events(self, count: int, timeout: float = DEADLINE) -> list[dict[str, object]]:
        wait_until(lambda: len(self.stdout) >= count, f"{count} event line(s)", timeout)
        return self.events()

    def wait_ready(self) -> None:
        """Wait for the 'receiving on' log line (the socket is bound or connected)."""
        wait_until(
            lambda: "receiving on" in self.stderr_text or self.proc.poll() is not None,
            "serve to start",
        )
        assert self.proc.poll() is None, f"serve exited early:\n{self.stderr_text}"

    def stop(self, signum: int = signal.SIGTERM, timeout: float = DEADLINE) -> int:
        """Send ``signum`` and wait for the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(DEADLINE)
        for thread in self._threads:
            thread.join(DEADLINE)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def start_cli() -> Iterator[Callable[..., CliProcess]]:
    """Start ``python -m zevents ARGS`` in the background; every child is killed after."""
    started: list[CliProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliProcess:
        child = CliProcess(args, env or cli_env(), cwd)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()


@pytest.fixture
def serve(start_cli: Callable[..., CliProcess]) -> Callable[..., CliProcess]:
    """Start ``zevents serve ARGS`` and wait until it receives."""

    def start(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliProcess:
        child = start_cli("serve", *args, env=env, cwd=cwd)
        child.wait_ready()
        return child

    return start


# --- Redis (bridge, worker, queue) --------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of a redis-server of the tests' own, on a free port, for the session."""
    from zevents.redis.server import RedisServer

    with RedisServer() as server:
        yield server.url


@pytest.fixture
def redis_env(redis_url: str) -> dict[str, str]:
    """A CLI child's environment with ``ZEVENTS_REDIS_URL`` pointing at that server."""
    return cli_env(ZEVENTS_REDIS_URL=redis_url)


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> str:
    """A queue name no other test uses."""
    return f"q-{request.node.name}-{time.monotonic_ns()}"


def queue_stats(queue_name: str, env: dict[str, str]) -> dict[str, Any]:
    """What ``zevents queue stats`` prints for the queue."""
    result = run_cli("queue", "stats", queue_name, env=env)
    assert result.returncode == 0, result.stderr
    stats: dict[str, Any] = orjson.loads(result.stdout)
    return stats


def assert_one_error_line(stderr: str, expected: str) -> None:
    """``stderr`` is one ``Error:`` line holding ``expected``, and no traceback."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Error: "), stderr
    assert expected in lines[0]
    assert "Traceback" not in stderr
