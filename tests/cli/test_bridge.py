"""``zevents bridge``: ZeroMQ events into a Redis queue, against a redis-server of the tests'."""

from __future__ import annotations

import signal
from collections.abc import Callable

from tests.cli.conftest import CliProcess, cli_env, queue_stats, run_cli
from zevents.redis.server import RedisServer


def start_bridge(
    start_cli: Callable[..., CliProcess], env: dict[str, str], *args: str
) -> CliProcess:
    bridge = start_cli("bridge", *args, env=env)
    bridge.wait_ready()
    return bridge


def test_bridge_enqueues_confirmed_events_and_skips_other_patterns(
    start_cli: Callable[..., CliProcess],
    redis_env: dict[str, str],
    ipc_endpoint: str,
    queue_name: str,
) -> None:
    env = redis_env
    bridge = start_bridge(
        start_cli, env, "--queue", queue_name, "--confirmed", "--pattern", "orders.*", ipc_endpoint
    )
    for event in ("orders.created", "users.joined", "orders.paid"):
        sent = run_cli("emit", "--confirmed", "-e", ipc_endpoint, event, '{"n": 1}', env=env)
        assert sent.returncode == 0, sent.stderr
    # confirmed: the events are in Redis when emit returns
    assert queue_stats(queue_name, env)["ready"] == {"0": 2}
    assert bridge.stop(signal.SIGTERM) == 0
    assert "enqueueing 2 event(s)" in bridge.stderr_text


def test_bridge_logs_where_it_receives_and_which_queue_it_fills(
    start_cli: Callable[..., CliProcess],
    redis_env: dict[str, str],
    ipc_endpoint: str,
    queue_name: str,
) -> None:
    bridge = start_bridge(start_cli, redis_env, "--queue", queue_name, ipc_endpoint)
    assert (
        f"INFO zevents.cli.bridge: receiving on {ipc_endpoint} (pull, bound) -> "
        f"queue {queue_name!r} (list)"
    ) in bridge.stderr_text
    assert bridge.stop(signal.SIGINT) == 0


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


def test_bridge_refuses_a_socket_type_that_cannot_receive(redis_env: dict[str, str]) -> None:
    result = run_cli(
        "bridge", "--queue", "q", "--socket-type", "push", "tcp://127.0.0.1:9", env=redis_env
    )
    assert result.returncode == 2, result.stderr
    stderr = result.stderr.decode()
    assert "'push' is not one of" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr
