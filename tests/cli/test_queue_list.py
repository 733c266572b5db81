"""``zevents queue list`` / ``zevents queues``: every queue at a glance, read-only; and the
tables on a real (pseudo) terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.cli.conftest import CliProcess, assert_one_error_line, run_cli, wait_until
from tests.cli.test_queue import fill_failed, json_lines, keyspace
from zevents.redis import RedisQueue, WorkerRegistry

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The tests' server with no key at all, so the list holds only this test's queues."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_url


def _rows(env: dict[str, str], *args: str) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in json_lines(run_cli("queue", "list", *args, env=env))}


def test_list_has_one_json_line_per_queue_with_counts_age_and_workers(
    redis_env: dict[str, str], clean_redis: str
) -> None:
    with RedisQueue("jobs", clean_redis, priorities=[10, 5, 1]) as jobs:
        jobs.send("job.run", 1, priority=10)
        jobs.send("job.run", 2, priority=1)
        jobs.send("job.run", 3, delay=3600)
    with RedisQueue("later", clean_redis, driver="sorted-set") as later:
        later.send("reminder", None, delay=3600)
    fill_failed(clean_redis, "orders", [("orders.created", "ValueError: no", None)])
    registry = WorkerRegistry(clean_redis)
    try:
        registry.beat("worker-1", {"queues": ["jobs", "orders"]}, 60_000)
        registry.beat("worker-2", {"queues": ["jobs"]}, 60_000)
    finally:
        registry.close()
    rows = _rows(redis_env, "--json")
    assert list(rows) == ["jobs", "later", "orders"]
    jobs_row = rows["jobs"]
    age = jobs_row.pop("oldest_ready_age")
    assert isinstance(age, float)
    assert age >= 0
    assert jobs_row == {
        "name": "jobs",
        "driver": "list",
        "ready": {"10": 1, "5": 0, "1": 1},
        "delayed": 1,
        "processing": 0,
        "serial": 0,
        "failed": 0,
        "workers": 2,
    }
    assert rows["later"]["driver"] == "sorted-set"
    assert (rows["later"]["delayed"], rows["later"]["oldest_ready_age"]) == (1, None)
    assert (rows["orders"]["failed"], rows["orders"]["workers"]) == (1, 1)


def test_off_a_terminal_list_prints_json_lines_and_queues_is_the_same(
    redis_env: dict[str, str], clean_redis: str
) -> None:
    with RedisQueue("later", clean_redis) as later:
        later.send("reminder", None, delay=3600)
    listed = json_lines(run_cli("queue", "list", env=redis_env))
    assert listed == json_lines(run_cli("queue", "list", "--json", env=redis_env))
    assert listed == json_lines(run_cli("queues", env=redis_env))
    assert [row["name"] for row in listed] == ["later"]


def test_list_table_off_a_terminal_is_whole(redis_env: dict[str, str], clean_redis: str) -> None:
    name = "a-queue-with-a-long-name-" + "x" * 150
    with RedisQueue(name, clean_redis, priorities=[10, 5]) as queue:
        queue.send("e", None, priority=5)
    result = run_cli("queue", "list", "--table", env=redis_env)
    assert result.returncode == 0, result.stderr
    header, _, row = result.stdout.decode().splitlines()
    assert header.split() == [
        "queue",
        "driver",
        "ready",
        "delayed",
        "processing",
        "failed",
        "oldest",
        "workers",
    ]
    cells = row.split()
    assert cells[:4] == [name, "list", "10:0", "5:1"]
    assert cells[4:7] == ["0", "0", "0"]
    assert re.fullmatch(r"\d+s", cells[7])
    assert cells[8] == "0"


def test_an_empty_server_lists_nothing(redis_env: dict[str, str], clean_redis: str) -> None:
    result = run_cli("queue", "list", env=redis_env)
    assert (result.returncode, result.stdout) == (0, b""), result.stderr


def test_list_and_its_watch_write_nothing(
    start_cli: Callable[..., CliProcess], redis_env: dict[str, str], clean_redis: str
) -> None:
    with RedisQueue("orders", clean_redis, driver="stream") as orders:
        orders.send("orders.created", {"id": 1})
    fill_failed(clean_redis, "jobs", [("job.run", "ValueError: no", "jobs.f")])
    registry = WorkerRegistry(clean_redis)
    try:
        # A worker that stopped beating long ago: a pruning read would delete it.
        registry.beat("gone", {"queues": ["orders"]}, 1)
    finally:
        registry.close()
    before = keyspace(clean_redis)
    assert json_lines(run_cli("queue", "list", env=redis_env))
    assert run_cli("queue", "list", "--table", env=redis_env).returncode == 0
    watching = start_cli("queue", "list", "--watch", "0.05", env=redis_env)
    watching.wait_for_events(6)  # three rounds of two queues
    assert watching.stop(signal.SIGINT) == 0, watching.stderr_text
    assert keyspace(clean_redis) == before


def test_watch_off_a_terminal_prints_every_interval_until_ctrl_c(
    start_cli: Callable[..., CliProcess], redis_env: dict[str, str], clean_redis: str
) -> None:
    with RedisQueue("orders", clean_redis) as orders:
        orders.send("orders.created", {"id": 1})
    watching = start_cli("queue", "list", "--watch", "0.05", env=redis_env)
    rows = watching.wait_for_events(3)
    assert [row["name"] for row in rows[:3]] == ["orders"] * 3
    assert watching.stop(signal.SIGINT) == 0
    assert watching.stderr_text == ""


@pytest.mark.parametrize("interval", ["0", "-1", "soon"])
def test_a_bad_watch_interval_is_a_usage_error(redis_env: dict[str, str], interval: str) -> None:
    result = run_cli("queue", "list", "--watch", interval, env=redis_env)
    assert result.returncode == 2
    assert_one_error_line(result.stderr.decode(), "Invalid value for '--watch'")


# --- on a terminal ------------------------------------------------------------------


class Terminal:
    """``python -m zevents ARGS`` with its stdout on a pseudo-terminal of 120 columns."""

    def __init__(self, args: tuple[str, ...], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {**env, "TERM": "xterm-256color"}
        env.pop("COLUMNS", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "zevents", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(slave)
        self._master = master
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            self._chunks.append(chunk)

    @property
    def text(self) -> str:
        """What it drew so far, escape sequences removed."""
        return _ANSI.sub(b"", b"".join(self._chunks)).decode(errors="replace")

    def finish(self, timeout: float = 15) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(15)
        self._reader.join(15)
        os.close(self._master)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


@pytest.fixture
def terminal() -> Iterator[Callable[..., Terminal]]:
    started: list[Terminal] = []

    def start(*args: str, env: dict[str, str]) -> Terminal:
        started.append(Terminal(args, env))
        return started[-1]

    yield start
    for term in started:
        term.close()


def test_on_a_terminal_list_draws_a_table(
    terminal: Callable[..., Terminal], redis_env: dict[str, str], clean_redis: str
) -> None:
    with RedisQueue("orders", clean_redis) as orders:
        orders.send("orders.created", {"id": 1})
    term = terminal("queue", "list", env=redis_env)
    assert term.finish() == 0
    header, _, row = term.text.splitlines()
    assert header.split()[:3] == ["queue", "driver", "ready"]
    assert row.split()[:3] == ["orders", "list", "1"]


def test_on_a_terminal_failed_draws_a_table_in_local_time(
    terminal: Callable[..., Terminal], redis_env: dict[str, str], clean_redis: str
) -> None:
    fill_failed(clean_redis, "orders", [("orders.created", "ValueError: no", "shop.on_order")])
    term = terminal("queue", "failed", "orders", env=redis_env)
    assert term.finish() == 0
    header, _, row = term.text.splitlines()
    assert header.split() == ["id", "event", "receiver", "error", "attempts", "failed", "at"]
    assert row.split()[1:6] == ["orders.created", "shop.on_order", "ValueError:", "no", "1"]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", row.rstrip())
    compact = terminal("queue", "failed", "orders", "--compact", env=redis_env)
    assert compact.finish() == 0
    assert compact.text.splitlines()[0].split() == ["id", "event", "error"]


def test_json_on_a_terminal_prints_json_lines(
    terminal: Callable[..., Terminal], redis_env: dict[str, str], clean_redis: str
) -> None:
    fill_failed(clean_redis, "orders", [("orders.created", "ValueError: no", None)])
    term = terminal("queue", "failed", "orders", "--json", "--compact", env=redis_env)
    assert term.finish() == 0
    assert '"error":"ValueError: no"' in term.text


def test_watch_on_a_terminal_redraws_until_ctrl_c_and_exits_zero(
    terminal: Callable[..., Terminal], redis_env: dict[str, str], clean_redis: str
) -> None:
    with RedisQueue("orders", clean_redis) as orders:
        orders.send("orders.created", {"id": 1})
    term = terminal("queue", "list", "--watch", "0.05", env=redis_env)
    wait_until(lambda: term.text.count("Ctrl-C to stop") >= 3, "three drawings")
    with RedisQueue("orders", clean_redis) as orders:
        orders.send("orders.created", {"id": 2})
    # The redrawn table shows the second message.
    wait_until(lambda: re.search(r"orders\s+list\s+2\s", term.text), "the new count")
    term.proc.send_signal(signal.SIGINT)
    assert term.finish() == 0
    assert term.proc.stderr is not None
    assert term.proc.stderr.read() == b""  # no "Interrupted.", no traceback
