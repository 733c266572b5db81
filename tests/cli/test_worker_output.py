"""What ``zevents worker`` says: a warning per failed attempt, with ``-v`` a line per
finished message, and a live status line only when stderr is a terminal."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cli.conftest import DEADLINE, run_cli
from zevents.redis import RedisQueue


def _send(redis_url: str, queue_name: str, *payloads: dict[str, Any]) -> list[str]:
    queue = RedisQueue(queue_name, redis_url)
    try:
        return [queue.send("orders.created", payload) for payload in payloads]
    finally:
        queue.close()


def _work(queue_name: str, env: dict[str, str], *flags: str, messages: int) -> str:
    result = run_cli(
        *flags, "worker", "--queue", queue_name, "--handler", "sample_handlers:fail_on_flag",
        "--max-messages", str(messages), "--max-attempts", "2", "--backoff-base", "0.1",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr.decode()


def test_a_failed_attempt_is_a_warning_naming_the_message_and_what_happens_next(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    """Without -v: one WARNING line per failed attempt; no line per finished message."""
    ok, bad = _send(redis_url, queue_name, {"id": 1}, {"id": 2, "fail": True})
    stderr = _work(queue_name, redis_env, messages=3)
    failures = [line for line in stderr.splitlines() if " failed on attempt " in line]
    assert len(failures) == 2, stderr
    first, last = failures
    assert " WARNING zevents.cli.worker: " in first
    assert first.endswith(
        f"message {bad} (orders.created) from {queue_name} failed on attempt 1 of 2: "
        "ValueError: flagged to fail; retried in 0.1 s"
    )
    assert last.endswith(
        f"message {bad} (orders.created) from {queue_name} failed on attempt 2 of 2: "
        "ValueError: flagged to fail; moved to the failed store"
    )
    assert " finished in " not in stderr
    assert ok not in stderr


def test_verbose_logs_a_line_per_finished_message(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    first, second = _send(redis_url, queue_name, {"id": 1}, {"id": 2})
    stderr = _work(queue_name, redis_env, "-v", messages=2)
    finished = [line for line in stderr.splitlines() if " finished in " in line]
    assert [
        line.split(" INFO zevents.cli.worker: ")[1].split(" finished")[0] for line in finished
    ] == [
        f"message {first} (orders.created) from {queue_name}",
        f"message {second} (orders.created) from {queue_name}",
    ]
    assert all(line.endswith("s on attempt 1") for line in finished)


@contextlib.contextmanager
def _on_a_terminal(args: list[str], env: dict[str, str]) -> Iterator[Callable[[str], str]]:
    """Run ``python -m zevents ARGS`` with stderr on a pseudo-terminal; yields a function
    that waits (with a deadline) until the terminal shows a text, and returns all so far."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "zevents", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env={**env, "COLUMNS": "200"},
    )
    os.close(slave)
    os.set_blocking(master, False)
    shown: list[bytes] = []

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + DEADLINE
        while text not in b"".join(shown).decode(errors="replace"):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not shown:\n{b''.join(shown)!r}")
            try:
                shown.append(os.read(master, 65536))
            except BlockingIOError:
                time.sleep(0.02)
            except OSError:  # the other end closed: nothing more will come
                time.sleep(0.02)
        return b"".join(shown).decode(errors="replace")

    try:
        yield wait_for
        process.send_signal(signal.SIGTERM)
        assert process.wait(DEADLINE) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(DEADLINE)
        os.close(master)


@pytest.mark.parametrize(
    ("concurrency", "label"),
    [("1", "zevents worker: "), ("2", "zevents worker (2 processes): ")],
)
def test_status_line_is_drawn_on_a_terminal(
    redis_env: dict[str, str], redis_url: str, queue_name: str, concurrency: str, label: str
) -> None:
    _send(redis_url, queue_name, {"id": 1}, {"id": 2}, {"id": 3, "fail": True})
    args = ["worker", "--queue", queue_name, "--handler", "sample_handlers:fail_on_flag"]
    args += ["--max-attempts", "1", "--concurrency", concurrency]
    with _on_a_terminal(args, redis_env) as wait_for:
        wait_for(f"{label}2 processed, 1 failed, 0 retried, ")


def test_no_status_line_when_stderr_is_not_a_terminal(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    _send(redis_url, queue_name, {"id": 1})
    stderr = _work(queue_name, redis_env, messages=1)
    assert "processed," not in stderr
    assert "\r" not in stderr
    assert "\x1b" not in stderr
