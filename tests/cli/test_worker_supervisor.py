"""``zevents worker --concurrency N``: worker processes under a supervisor that restarts
them, bounds the restarts, and stops them all (against a redis-server of the tests')."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import CliProcess, assert_one_error_line, queue_stats, wait_until
from zevents.redis import RedisQueue

HANDLERS = """\
import json, os, time


def record(event, payload):
    time.sleep(payload.get("sleep", 0))
    with open(os.environ["ZEV_TEST_OUT"], "a") as out:
        out.write(json.dumps({"payload": payload, "pid": os.getpid()}) + "\\n")


def hang(event, payload):
    record(event, payload)
    time.sleep(120)
"""


@pytest.fixture
def workdir(tmp_path: Path, redis_env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A working directory holding the handler module ``supervised``, and the env."""
    (tmp_path / "supervised.py").write_text(HANDLERS)
    return tmp_path, {**redis_env, "ZEV_TEST_OUT": str(tmp_path / "out.jsonl")}


def _send(redis_url: str, queue_name: str, payloads: list[dict[str, Any]]) -> None:
    queue = RedisQueue(queue_name, redis_url)
    try:
        queue.send_many([("job.run", payload) for payload in payloads])
    finally:
        queue.close()


def _recorded(directory: Path) -> list[dict[str, Any]]:
    out = directory / "out.jsonl"
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def children_of(pid: int) -> set[int]:
    """The pids of ``pid``'s live children (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its ")".
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"


def _supervise(
    start_cli: Callable[..., CliProcess],
    workdir: tuple[Path, dict[str, str]],
    queue_name: str,
    *args: str,
    handler: str = "supervised:record",
) -> tuple[CliProcess, set[int]]:
    """Start a supervisor of two worker processes; it and their pids once both run."""
    directory, env = workdir
    supervisor = start_cli(
        "worker", "--queue", queue_name, "--handler", handler, "--concurrency", "2", *args,
        env=env, cwd=directory,
    )  # fmt: skip
    started = f" on {queue_name} -> "
    wait_until(lambda: supervisor.stderr_text.count(started) == 2, "two worker processes")
    children = children_of(supervisor.proc.pid)
    assert len(children) == 2, supervisor.stderr_text
    return supervisor, children


def test_a_killed_worker_process_is_restarted_and_the_queue_still_drains(
    start_cli: Callable[..., CliProcess],
    workdir: tuple[Path, dict[str, str]],
    redis_env: dict[str, str],
    redis_url: str,
    queue_name: str,
) -> None:
    """Every message is handled at least once and none is left processing: the killed
    process's lease expires (--keep-alive 1) and the others take its message over."""
    ids = list(range(40))
    _send(redis_url, queue_name, [{"id": i, "sleep": 0.05} for i in ids])
    supervisor, children = _supervise(start_cli, workdir, queue_name, "--keep-alive", "1")
    directory, _ = workdir
    wait_until(lambda: len(_recorded(directory)) >= 4, "the first messages")
    victim = min(children)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: "restarting it in 0.5 s" in supervisor.stderr_text, "the restart")

    def replaced() -> bool:
        now = children_of(supervisor.proc.pid)
        return len(now) == 2 and victim not in now

    wait_until(replaced, "a new worker process")
    wait_until(lambda: {r["payload"]["id"] for r in _recorded(directory)} == set(ids), "all ids")

    def drained() -> bool:
        stats = queue_stats(queue_name, redis_env)
        return bool(stats["ready"] == {"0": 0} and stats["processing"] == 0)

    wait_until(drained, "an empty queue")
    assert supervisor.stop(signal.SIGTERM) == 0, supervisor.stderr_text


def test_sigterm_stops_every_worker_process_and_exits_zero(
    start_cli: Callable[..., CliProcess], workdir: tuple[Path, dict[str, str]], queue_name: str
) -> None:
    supervisor, children = _supervise(start_cli, workdir, queue_name)
    assert supervisor.stop(signal.SIGTERM) == 0, supervisor.stderr_text
    assert all(_is_gone(pid) for pid in children)
    assert "2 worker processes stopped" in supervisor.stderr_text


def test_a_death_past_max_restarts_stops_the_others_and_exits_one(
    start_cli: Callable[..., CliProcess], workdir: tuple[Path, dict[str, str]], queue_name: str
) -> None:
    supervisor, children = _supervise(start_cli, workdir, queue_name, "--max-restarts", "0")
    victim = min(children)
    os.kill(victim, signal.SIGKILL)
    assert supervisor.proc.wait(15) == 1, supervisor.stderr_text
    supervisor.stop()  # the exit is in: this only collects the last output
    assert all(_is_gone(pid) for pid in children)
    last = supervisor.stderr_text.splitlines()[-1]
    assert_one_error_line(
        last, f"worker process {victim} was killed by SIGKILL and --max-restarts 0 is used up"
    )


def test_second_sigint_kills_the_worker_processes_at_once_and_exits_130(
    start_cli: Callable[..., CliProcess],
    workdir: tuple[Path, dict[str, str]],
    redis_url: str,
    queue_name: str,
) -> None:
    """Both processes hang in a handler: the first SIGINT waits for them (up to the
    30 s --stop-timeout), the second kills them and says so."""
    _send(redis_url, queue_name, [{"id": 1}, {"id": 2}])
    supervisor, children = _supervise(start_cli, workdir, queue_name, handler="supervised:hang")
    directory, _ = workdir
    wait_until(lambda: len(_recorded(directory)) == 2, "both messages in hand")
    supervisor.proc.send_signal(signal.SIGINT)
    wait_until(lambda: "stopping 2 worker process(es)" in supervisor.stderr_text, "stopping")
    assert supervisor.stop(signal.SIGINT) == 130, supervisor.stderr_text
    assert "second interrupt: killing 2 worker process(es) now" in supervisor.stderr_text
    assert all(_is_gone(pid) for pid in children)


def test_worker_processes_past_the_stop_timeout_are_killed_and_it_exits_one(
    start_cli: Callable[..., CliProcess],
    workdir: tuple[Path, dict[str, str]],
    redis_url: str,
    queue_name: str,
) -> None:
    """Nothing waits forever: a handler that hangs is killed at --stop-timeout. The
    other process is idle and stops by itself: the timeout leaves it room for that on a
    loaded machine (0.5 s did not, now and then)."""
    _send(redis_url, queue_name, [{"id": 1}])
    supervisor, children = _supervise(
        start_cli, workdir, queue_name, "--stop-timeout", "3", handler="supervised:hang"
    )
    directory, _ = workdir
    wait_until(lambda: len(_recorded(directory)) == 1, "a message in hand")
    assert supervisor.stop(signal.SIGTERM) == 1, supervisor.stderr_text
    assert all(_is_gone(pid) for pid in children)
    last = supervisor.stderr_text.splitlines()[-1]
    assert_one_error_line(last, "1 worker process(es) did not stop within 3 s and were killed")


def test_worker_processes_that_finish_by_themselves_are_not_restarted(
    start_cli: Callable[..., CliProcess],
    workdir: tuple[Path, dict[str, str]],
    redis_url: str,
    queue_name: str,
) -> None:
    """--max-messages counts per process; when every process is done, so is the
    supervisor, with exit status 0."""
    _send(redis_url, queue_name, [{"id": 1, "sleep": 0.5}, {"id": 2, "sleep": 0.5}])
    directory, env = workdir
    supervisor = start_cli(
        "worker", "--queue", queue_name, "--handler", "supervised:record",
        "--concurrency", "2", "--max-messages", "1", env=env, cwd=directory,
    )  # fmt: skip
    assert supervisor.proc.wait(15) == 0, supervisor.stderr_text
    supervisor.stop()  # the exit is in: this only collects the last output
    assert sorted(r["payload"]["id"] for r in _recorded(directory)) == [1, 2]
    assert "restarting" not in supervisor.stderr_text
    assert "every worker process finished" in supervisor.stderr_text


def test_max_restarts_alone_supervises_one_process_and_bounds_its_restarts(
    start_cli: Callable[..., CliProcess], workdir: tuple[Path, dict[str, str]], queue_name: str
) -> None:
    """--max-restarts 1: the first death is restarted, the second ends it with exit 1."""
    directory, env = workdir
    supervisor = start_cli(
        "worker", "--queue", queue_name, "--handler", "supervised:record",
        "--max-restarts", "1", env=env, cwd=directory,
    )  # fmt: skip
    started = f" on {queue_name} -> "
    wait_until(lambda: supervisor.stderr_text.count(started) == 1, "the worker process")
    (first,) = children_of(supervisor.proc.pid)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: supervisor.stderr_text.count(started) == 2, "the restarted process")
    assert "restart 1 of 1" in supervisor.stderr_text
    (second,) = children_of(supervisor.proc.pid)
    os.kill(second, signal.SIGKILL)
    assert supervisor.proc.wait(15) == 1, supervisor.stderr_text
    supervisor.stop()  # the exit is in: this only collects the last output
    last = supervisor.stderr_text.splitlines()[-1]
    assert_one_error_line(last, f"worker process {second} was killed by SIGKILL")


def test_worker_processes_stop_by_themselves_when_the_supervisor_is_killed(
    start_cli: Callable[..., CliProcess], workdir: tuple[Path, dict[str, str]], queue_name: str
) -> None:
    """No orphan keeps working: the pipe they report on breaks, and they stop."""
    supervisor, children = _supervise(start_cli, workdir, queue_name)
    supervisor.kill()
    wait_until(lambda: all(_is_gone(pid) for pid in children), "the orphans to stop")
