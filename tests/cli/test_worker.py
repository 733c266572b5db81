"""``zevents worker``: running handlers on queued messages, against a redis-server of the tests'."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import (
    CliProcess,
    assert_one_error_line,
    cli_env,
    queue_stats,
    run_cli,
    wait_until,
)
from zevents.redis import RedisQueue

HANDLER = "sample_handlers:record"


def test_worker_runs_handler_and_failed_messages_can_be_retried_and_flushed(
    start_cli: Callable[..., CliProcess], redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    env = redis_env
    queue = RedisQueue(queue_name, redis_url)
    try:
        queue.send("orders.created", {"id": 1})
        queue.send("orders.created", {"id": 2, "fail": True})
    finally:
        queue.close()
    result = run_cli(
        "worker",
        "--queue",
        queue_name,
        "--handler",
        "sample_handlers:fail_on_flag",
        "--max-messages",
        "2",
        "--max-attempts",
        "1",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert b"worker stopped after 2 message(s)" in result.stderr
    failed = run_cli("queue", "failed", queue_name, env=env)
    (entry,) = [json.loads(line) for line in failed.stdout.splitlines()]
    assert entry["payload"] == {"id": 2, "fail": True}
    assert entry["error"] == "ValueError: flagged to fail"
    assert entry["receiver"] == "sample_handlers.fail_on_flag"
    assert queue_stats(queue_name, env)["failed"] == 1
    retried = run_cli("queue", "retry", queue_name, "--id", entry["id"], env=env)
    assert retried.stdout.strip() == b"1"
    assert queue_stats(queue_name, env)["ready"] == {"0": 1}
    # fail it again, then flush the store
    again = run_cli(
        "worker",
        "--queue",
        queue_name,
        "--handler",
        "sample_handlers:fail_on_flag",
        "--max-messages",
        "1",
        "--max-attempts",
        "1",
        env=env,
    )
    assert again.returncode == 0, again.stderr
    assert run_cli("queue", "flush", queue_name, env=env).stdout.strip() == b"1"
    assert queue_stats(queue_name, env)["failed"] == 0


def test_worker_stops_on_sigterm_and_queue_shutdown(
    start_cli: Callable[..., CliProcess], redis_env: dict[str, str], queue_name: str
) -> None:
    env = redis_env
    first = start_cli("worker", "--queue", queue_name, "--handler", HANDLER, env=env)
    wait_until(lambda: "worker " in first.stderr_text, "worker to start")
    assert first.stop(signal.SIGTERM) == 0
    second = start_cli("worker", "--queue", queue_name, "--handler", HANDLER, env=env)
    wait_until(lambda: "worker " in second.stderr_text, "worker to start")

    def listed() -> bool:
        lines = run_cli("queue", "workers", env=env).stdout.splitlines()
        return any(json.loads(line)["queues"] == [queue_name] for line in lines)

    wait_until(listed, "the worker's heartbeat")
    assert run_cli("queue", "shutdown", env=env).returncode == 0
    assert second.proc.wait(15) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--handler", "no_such_mod:f"), "cannot import"),
        (("--handler", HANDLER, "--serve", "x-y"), "--serve"),
        (("--handler", HANDLER, "--serve", "7"), "Invalid value for '--serve': priorities '7'"),
        (("--handler", HANDLER, "--keep-alive", "0.0001"), "Invalid value for '--keep-alive'"),
        (("--handler", HANDLER, "--max-attempts", "0"), "Invalid value for '--max-attempts'"),
    ],
    ids=["handler", "serve-malformed", "serve-selects-nothing", "keep-alive", "max-attempts"],
)
def test_bad_arguments_exit_two_with_one_line(
    redis_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    """A bad worker option is reported as its flag (``ConfigError.option`` mapped)."""
    result = run_cli("worker", "--queue", "q", *args, env=redis_env)
    assert result.returncode == 2, result.stderr
    stderr = result.stderr.decode()
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr


def test_bad_serve_spec_is_reported_before_redis_is_reached() -> None:
    """Options are checked first: no wait for (or failure of) an unreachable server."""
    result = run_cli(
        "worker",
        "--queue",
        "q",
        "--handler",
        HANDLER,
        "--driver",
        "stream",  # the stream driver talks to Redis as the queue opens
        "--redis-url",
        "redis://127.0.0.1:1/0",
        "--serve",
        "x-y",
        env=cli_env(),
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.decode().splitlines() == [
        "Error: Invalid value for '--serve': bad priority range 'x-y': use 10, 20-40, 25- or -20"
    ]


# --- handlers get only the queued events (issue 9, defect 1) -------------------------


def _send(redis_url: str, queue_name: str, *messages: tuple[str, Any]) -> None:
    queue = RedisQueue(queue_name, redis_url)
    try:
        for event, payload in messages:
            queue.send(event, payload)
    finally:
        queue.close()


def test_star_handler_gets_exactly_the_queued_events_and_failures_name_it(
    redis_env: dict[str, str], redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    """``--pattern '*'`` never passes the worker's zevents.worker.* hooks to a handler;
    the failed store names the user's function, not zevents' wrapper."""
    out = tmp_path / "out.jsonl"
    _send(
        redis_url,
        queue_name,
        ("orders.created", {"id": 1}),
        ("boom", {"id": 2}),
        ("orders.paid", {"id": 3}),
    )
    result = run_cli(
        "worker",
        "--queue",
        queue_name,
        "--handler",
        "sample_handlers:record_unless_boom",
        "--pattern",
        "*",
        "--max-messages",
        "3",
        "--max-attempts",
        "1",
        env={**redis_env, "ZEV_TEST_OUT": str(out)},
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"event": "orders.created", "payload": {"id": 1}},
        {"event": "orders.paid", "payload": {"id": 3}},
    ]
    failed = run_cli("queue", "failed", queue_name, env=redis_env)
    (entry,) = [json.loads(line) for line in failed.stdout.splitlines()]
    assert entry["event"] == "boom"
    assert entry["receiver"] == "sample_handlers.record_unless_boom"


# --- handler modules in the working directory (issue 9) ------------------------------

CWD_HANDLERS = """\
import json, os


def record(event, payload):
    with open(os.environ["ZEV_TEST_OUT"], "a") as out:
        out.write(json.dumps({"event": event, "payload": payload, "pid": os.getpid()}) + "\\n")
"""


def write_handlers(directory: Path, name: str = "cwd_handlers") -> str:
    """Write a handler module (``record`` appends JSON lines with the worker's pid to
    ``$ZEV_TEST_OUT``) into ``directory``; its ``--handler`` spec."""
    (directory / f"{name}.py").write_text(CWD_HANDLERS)
    return f"{name}:record"


def recorded(out: Path) -> list[dict[str, Any]]:
    """The lines a ``write_handlers`` handler wrote."""
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_handler_module_is_found_in_the_working_directory(
    redis_env: dict[str, str], redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    """As with RQ and Celery, no PYTHONPATH=. is needed (PYTHONSAFEPATH keeps
    ``python -m`` from adding the directory itself, as the ``zevents`` script does not)."""
    spec = write_handlers(tmp_path)
    env = {**redis_env, "PYTHONSAFEPATH": "1", "ZEV_TEST_OUT": str(tmp_path / "out.jsonl")}
    assert str(tmp_path) not in env["PYTHONPATH"].split(os.pathsep)
    premise = subprocess.run(
        [sys.executable, "-c", "import cwd_handlers"], cwd=tmp_path, env=env, check=False
    )
    assert premise.returncode != 0, "the directory is importable without the CLI's help"
    _send(redis_url, queue_name, ("orders.created", {"id": 1}))
    result = run_cli(
        "worker",
        "--queue",
        queue_name,
        "--handler",
        spec,
        "--max-messages",
        "1",
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert [(r["event"], r["payload"]) for r in recorded(tmp_path / "out.jsonl")] == [
        ("orders.created", {"id": 1})
    ]


# --- Redis at the start, retry settings of a connection ------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("concurrency", ["1", "2"])
def test_unreachable_redis_at_start_is_exit_one_with_one_line(concurrency: str) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"
    result = run_cli(
        "worker",
        "--queue",
        "q",
        "--handler",
        HANDLER,
        "--redis",
        url,
        "--concurrency",
        concurrency,
        env=cli_env(),
    )
    assert result.returncode == 1, result.stderr
    assert_one_error_line(result.stderr.decode(), "is unavailable")


def test_retry_settings_come_from_the_connection_and_options_override_them(
    redis_url: str, queue_name: str, tmp_path: Path
) -> None:
    """``--redis NAME``: the ``[redis.NAME]`` table's max_attempts and backoff are the
    defaults; ``--max-attempts`` and ``--backoff-base`` given win."""
    (tmp_path / "zevents.toml").write_text(
        f'[redis.jobs]\nurl = "{redis_url}"\nmax_attempts = 4\n'
        'backoff = "linear"\nbackoff_base = 0.1\n'
    )
    env = cli_env()
    env.pop("ZEVENTS_REDIS_URL", None)
    _send(redis_url, queue_name, ("orders.created", {"id": 1, "fail": True}))
    worker = (
        "worker",
        "--redis",
        "jobs",
        "--queue",
        queue_name,
        "--handler",
        "sample_handlers:fail_on_flag",
    )
    from_file = run_cli(*worker, "--max-messages", "4", env=env, cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    stderr = from_file.stderr.decode()
    # linear: 0.1, 0.2, 0.3 (exponential would wait 0.4 after the third attempt)
    assert "attempt 3 of 4: ValueError: flagged to fail; retried in 0.3 s" in stderr
    assert "attempt 4 of 4: ValueError: flagged to fail; moved to the failed store" in stderr

    _send(redis_url, queue_name, ("orders.created", {"id": 2, "fail": True}))
    overridden = run_cli(
        *worker,
        "--max-messages",
        "2",
        "--max-attempts",
        "2",
        "--backoff-base",
        "0.25",
        env=env,
        cwd=tmp_path,
    )
    assert overridden.returncode == 0, overridden.stderr
    stderr = overridden.stderr.decode()
    assert "attempt 1 of 2: ValueError: flagged to fail; retried in 0.2 s" in stderr
    assert "attempt 2 of 2: ValueError: flagged to fail; moved to the failed store" in stderr
    failed = run_cli("queue", "failed", queue_name, "--redis", redis_url, env=env)
    entries = [json.loads(line) for line in failed.stdout.splitlines()]
    assert {e["payload"]["id"]: e["attempts"] for e in entries} == {1: 4, 2: 2}


# --- stopping ---------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("concurrency", ["1", "2"])
def test_idle_worker_exits_zero_within_two_seconds_of_a_stop_signal(
    start_cli: Callable[..., CliProcess],
    redis_env: dict[str, str],
    queue_name: str,
    signum: signal.Signals,
    concurrency: str,
) -> None:
    child = start_cli(
        "worker",
        "--queue",
        queue_name,
        "--handler",
        HANDLER,
        "--concurrency",
        concurrency,
        env=redis_env,
    )
    started = f" on {queue_name} -> "
    wait_until(lambda: child.stderr_text.count(started) == int(concurrency), "workers to start")
    assert child.stop(signum, timeout=2.0) == 0, child.stderr_text
