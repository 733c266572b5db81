"""``zevents bridge``: ZeroMQ events into a Redis queue, against a redis-server of the tests'."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.cli.conftest import (
    CliProcess,
    assert_one_error_line,
    cli_env,
    queue_stats,
    run_cli,
    wait_until,
)
from tests.conftest import free_tcp_port
from zevents.redis import RedisQueue
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


def _recorded(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_confirmed_emits_through_bridge_and_worker_reach_the_handler_exactly_once(
    start_cli: Callable[..., CliProcess],
    redis_env: dict[str, str],
    ipc_endpoint: str,
    queue_name: str,
    short_tmp: Path,
) -> None:
    """emit --confirmed -> bridge -> Redis -> zevents worker -> a handler writing a file."""
    out = short_tmp / "handled.jsonl"
    env = {**redis_env, "ZEV_TEST_OUT": str(out)}
    # Frequent idle events: none of zevents' own events may be enqueued.
    start_bridge(
        start_cli, env, "--queue", queue_name, "--confirmed", "--poll-timeout", "0.05", ipc_endpoint
    )
    lines = b"".join(b'{"event": "order.%d", "payload": {"n": %d}}\n' % (n, n) for n in range(20))
    sent = run_cli("-q", "emit", "--confirmed", "-e", ipc_endpoint, "-", input=lines, env=env)
    assert sent.returncode == 0, sent.stderr
    assert queue_stats(queue_name, env)["ready"] == {"0": 20}
    worker = start_cli(
        "worker", "--queue", queue_name, "--handler", "sample_handlers:record", env=env
    )
    wait_until(lambda: len(_recorded(out)) >= 20, "the worker to handle 20 events")
    assert worker.stop() == 0
    assert _recorded(out) == [{"event": f"order.{n}", "payload": {"n": n}} for n in range(20)]
    stats = queue_stats(queue_name, env)
    assert stats["ready"] == {"0": 0}
    assert stats["processing"] == 0


def test_bridge_pattern_defaults_to_every_event(
    start_cli: Callable[..., CliProcess],
    redis_env: dict[str, str],
    ipc_endpoint: str,
    queue_name: str,
) -> None:
    start_bridge(start_cli, redis_env, "--queue", queue_name, "--confirmed", ipc_endpoint)
    for event in ("orders.created", "users.joined", "x"):
        sent = run_cli("emit", "--confirmed", "-e", ipc_endpoint, event, env=redis_env)
        assert sent.returncode == 0, sent.stderr
    assert queue_stats(queue_name, redis_env)["ready"] == {"0": 3}


@pytest.mark.parametrize(
    ("levels", "args"),
    [
        ((10, 5, 1), ["--priority", "7"]),
        (None, ["--priority", "7"]),
        (None, ["--priorities", "10,5,1", "--priority", "7"]),
    ],
    ids=["existing-queue", "new-queue-default-levels", "new-queue-given-levels"],
)
def test_bridge_with_a_priority_the_queue_has_not_exits_2_before_receiving(
    redis_env: dict[str, str],
    redis_url: str,
    ipc_endpoint: str,
    queue_name: str,
    levels: tuple[int, ...] | None,
    args: list[str],
) -> None:
    if levels is not None:
        with RedisQueue(queue_name, redis_url, priorities=levels) as queue:
            queue.send("created.the.queue")
    result = run_cli("bridge", "--queue", queue_name, *args, ipc_endpoint, env=redis_env)
    assert result.returncode == 2
    assert_one_error_line(result.stderr.decode(), "'--priority': priority 7 is not one of")
    assert not Path(ipc_endpoint.removeprefix("ipc://")).exists()  # never bound


def test_bridge_exits_1_when_redis_is_unreachable_at_start(ipc_endpoint: str) -> None:
    down = f"redis://127.0.0.1:{free_tcp_port()}/0"
    result = run_cli("bridge", "--queue", "orders", "--redis", down, ipc_endpoint, env=cli_env())
    assert result.returncode == 1
    assert_one_error_line(result.stderr.decode(), f"Redis at {down} is unavailable")
    assert not Path(ipc_endpoint.removeprefix("ipc://")).exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_idle_bridge_exits_0_within_2_seconds_of_a_signal(
    start_cli: Callable[..., CliProcess],
    redis_env: dict[str, str],
    ipc_endpoint: str,
    queue_name: str,
    signum: int,
) -> None:
    bridge = start_bridge(
        start_cli, redis_env, "--queue", queue_name, "--poll-timeout", "3600", ipc_endpoint
    )
    bridge.proc.send_signal(signum)
    wait_until(lambda: bridge.proc.poll() is not None, "the bridge to exit", timeout=2.0)
    assert bridge.stop() == 0
    assert "Traceback" not in bridge.stderr_text


def test_bridge_logs_an_unconfirmed_event_it_drops_at_error(
    start_cli: Callable[..., CliProcess], ipc_endpoint: str, queue_name: str
) -> None:
    server = RedisServer().start()
    try:
        env = cli_env(ZEVENTS_REDIS_URL=server.url)
        bridge = start_bridge(start_cli, env, "--queue", queue_name, ipc_endpoint)
    finally:
        server.stop()
    sent = run_cli("emit", "-e", ipc_endpoint, "orders.lost", '{"id": 1}', env=env)
    assert sent.returncode == 0, sent.stderr  # unconfirmed: the sender cannot know
    wait_until(lambda: "dropped 'orders.lost'" in bridge.stderr_text, "the ERROR line")
    dropped = [line for line in bridge.stderr_text.splitlines() if "dropped 'orders.lost'" in line]
    assert dropped[0].split(" ", 3)[1:3] == ["ERROR", "zevents.redis.bridge:"]
    assert f"Redis at {server.url} is unavailable" in dropped[0]
    assert bridge.proc.poll() is None
    assert bridge.stop() == 0
    assert "dropped 1" in bridge.stderr_text


def test_bridge_survives_a_redis_restart_and_never_confirms_what_it_did_not_store(
    start_cli: Callable[..., CliProcess], ipc_endpoint: str, queue_name: str
) -> None:
    """Confirmed emits fail while Redis is down (exit 1), succeed once it is back; the
    outage is logged at WARNING while it lasts, even with no event coming."""
    server = RedisServer().start()
    port = server.port
    env = cli_env(ZEVENTS_REDIS_URL=server.url)
    bridge = start_bridge(start_cli, env, "--queue", queue_name, "--confirmed", ipc_endpoint)

    def emit(event: str) -> int:
        args = ["-q", "emit", "--confirmed", "-e", ipc_endpoint, "--timeout", "5", event]
        return run_cli(*args, env=env).returncode

    assert emit("before") == 0
    assert queue_stats(queue_name, env)["ready"] == {"0": 1}
    server.stop()
    assert emit("during.1") == 1
    assert emit("during.2") == 1
    wait_until(lambda: "Redis still unavailable after" in bridge.stderr_text, "a second warning")
    assert bridge.proc.poll() is None
    with RedisServer(port=port) as restarted:
        assert restarted.url == server.url
        wait_until(lambda: "Redis is available again" in bridge.stderr_text, "the recovery")
        after = [f"after.{n}" for n in range(3)]
        assert [emit(event) for event in after] == [0, 0, 0]
        with RedisQueue(queue_name, restarted.url) as queue:
            consumer = queue.consumer()
            taken = [consumer.decode(item).event for item in consumer.take(10)]
        assert taken == after  # a fresh server: exactly what was confirmed since
        assert bridge.stop() == 0
    warnings = [line for line in bridge.stderr_text.splitlines() if " WARNING " in line]
    assert "confirmed senders get an error until it is back" in warnings[0]


def test_bridge_with_min_replicas_reports_a_batch_no_replica_acknowledged(
    start_cli: Callable[..., CliProcess],
    redis_env: dict[str, str],
    ipc_endpoint: str,
    queue_name: str,
) -> None:
    """A server with no replica: the confirmed sender is told, and the bridge goes on."""
    bridge = start_bridge(
        start_cli, redis_env, "--queue", queue_name, "--confirmed", "--min-replicas", "1",
        ipc_endpoint,
    )  # fmt: skip
    for _ in range(2):
        sent = run_cli(
            "emit", "--confirmed", "-e", ipc_endpoint, "orders.created", "1", env=redis_env
        )
        assert sent.returncode == 1
        assert "0 of 1 replica(s) acknowledged" in sent.stderr.decode()
    assert bridge.proc.poll() is None
    assert bridge.stop(signal.SIGTERM) == 0


def test_bridge_refuses_a_negative_min_replicas(redis_env: dict[str, str]) -> None:
    result = run_cli(
        "bridge", "--queue", "q", "--min-replicas", "-1", "ipc:///tmp/x.sock", env=redis_env
    )
    assert result.returncode == 2
    assert "--min-replicas" in result.stderr.decode()
