"""``zevents worker``: running handlers on queued messages, against a redis-server of the tests'."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

import pytest

from tests.cli.conftest import CliProcess, cli_env, queue_stats, run_cli, wait_until
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
