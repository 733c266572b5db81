"""``zevents queue send``: enqueue directly, one message or JSON lines from stdin."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.cli.conftest import assert_one_error_line, cli_env, queue_stats, run_cli
from tests.cli.test_queue import keyspace
from zevents.redis import RedisQueue


def _taken(redis_url: str, queue_name: str, count: int) -> list[tuple[str, str, Any]]:
    """Take ``count`` messages of the queue: (id, event, payload) each, in order."""
    with RedisQueue(queue_name, redis_url) as queue:
        consumer = queue.consumer()
        messages = [consumer.decode(taken) for taken in consumer.take(count)]
    return [(m.id, m.event, m.payload) for m in messages]


def test_send_enqueues_one_message_and_prints_its_id(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    result = run_cli("queue", "send", queue_name, "orders.created", '{"id": 1}', env=redis_env)
    assert result.returncode == 0, result.stderr
    message_id = result.stdout.decode().strip()
    assert result.stdout == f"{message_id}\n".encode()
    assert _taken(redis_url, queue_name, 5) == [(message_id, "orders.created", {"id": 1})]


def test_send_without_a_payload_sends_null(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    assert run_cli("queue", "send", queue_name, "ping", env=redis_env).returncode == 0
    assert [(event, payload) for _, event, payload in _taken(redis_url, queue_name, 5)] == [
        ("ping", None)
    ]


def test_send_options_reach_the_queue(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    new = ("--priorities", "10,5,1")
    high = run_cli("queue", "send", queue_name, "a", "1", *new, "--priority", "10", env=redis_env)
    assert high.returncode == 0, high.stderr
    later = run_cli("queue", "send", queue_name, "b", "2", "--delay", "3600", env=redis_env)
    assert later.returncode == 0, later.stderr
    stats = queue_stats(queue_name, redis_env)
    assert (stats["ready"], stats["delayed"]) == ({"10": 1, "5": 0, "1": 0}, 1)


def test_send_unique_with_an_identifier_enqueues_once(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    args = ("queue", "send", queue_name, "orders.created", "{}", "--identifier", "o-1", "--unique")
    first = run_cli(*args, env=redis_env)
    second = run_cli(*args, env=redis_env)
    assert first.returncode == second.returncode == 0, second.stderr
    assert first.stdout == second.stdout
    assert queue_stats(queue_name, redis_env)["ready"] == {"0": 1}


def test_send_serial_group_is_recorded(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    args = ("queue", "send", queue_name, "e", "{}", "--serial-group", "customer-7")
    assert run_cli(*args, env=redis_env).returncode == 0
    assert run_cli(*args, env=redis_env).returncode == 0
    # Only the first of a serial group is ready; the next waits for it to finish.
    assert len(_taken(redis_url, queue_name, 5)) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--priority", "7"), "Invalid value for '--priority': priority 7 is not one of"),
        (("--unique",), "Invalid value for '--unique': unique=True needs an identifier"),
        (("--serial-group", ""), "Invalid value for '--serial-group'"),
        (("--delay", "-1"), "Invalid value for '--delay'"),
    ],
    ids=["priority", "unique", "serial-group", "delay"],
)
def test_a_bad_send_option_is_exit_two_and_sends_nothing(
    redis_env: dict[str, str],
    redis_url: str,
    queue_name: str,
    args: tuple[str, ...],
    message: str,
) -> None:
    with RedisQueue(queue_name, redis_url, priorities=[10, 5, 1]) as queue:
        queue.send("first", None)
    before = keyspace(redis_url)
    result = run_cli("queue", "send", queue_name, "e", "{}", *args, env=redis_env)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), message)
    assert result.stdout == b""
    assert keyspace(redis_url) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("e", "{bad"), "Invalid value for PAYLOAD: '{bad' is not JSON"),
        (("-", "{}"), "EVENT '-' reads whole events from stdin and takes no PAYLOAD"),
        (("", "{}"), "the event name must be a non-empty string"),
        (("zevents.service.stop",), "'zevents.service.stop' is reserved"),
    ],
    ids=["payload", "event-dash-and-payload", "empty-event", "internal-event"],
)
def test_bad_arguments_are_exit_two_before_redis_is_reached(
    queue_name: str, args: tuple[str, ...], message: str
) -> None:
    unreachable = ("--redis", "redis://127.0.0.1:1/0")
    result = run_cli("queue", "send", queue_name, *args, *unreachable)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), message)


def test_stdin_lines_are_sent_and_bad_ones_named_and_skipped(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    lines = b'{"id": 1}\nnot json\n\n{"event": "orders.paid", "payload": {"id": 2}}\n'
    lines += b'{"event": "zevents.worker.before"}\n"just a string"\n'
    result = run_cli("queue", "send", queue_name, "orders.created", "-", input=lines, env=redis_env)
    assert result.returncode == 1, result.stderr
    stderr = result.stderr.decode().splitlines()
    assert stderr[0].startswith("zevents queue send: line 2: not JSON")
    assert stderr[1].startswith("zevents queue send: line 5: the event name")
    assert stderr[2:] == ["Error: 2 bad lines skipped; the other 3 sent"]
    ids = result.stdout.decode().split()
    assert _taken(redis_url, queue_name, 10) == [
        (ids[0], "orders.created", {"id": 1}),
        (ids[1], "orders.paid", {"id": 2}),
        (ids[2], "orders.created", "just a string"),
    ]


def test_event_dash_takes_only_whole_events(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    lines = b'{"event": "a", "payload": 1}\n{"id": 3}\n{"event": "b"}\n'
    result = run_cli("queue", "send", queue_name, "-", input=lines, env=redis_env)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        'zevents queue send: line 2: not {"event": ..., "payload": ...}, and no EVENT was '
        "given for payloads; skipped",
        "Error: 1 bad line skipped; the other 2 sent",
    ]
    assert [(e, p) for _, e, p in _taken(redis_url, queue_name, 10)] == [("a", 1), ("b", None)]


def test_stdin_of_only_bad_lines_says_nothing_was_sent(
    redis_env: dict[str, str], queue_name: str
) -> None:
    result = run_cli("queue", "send", queue_name, "e", "-", input=b"nope\n", env=redis_env)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines()[-1] == "Error: 1 bad line skipped; nothing was sent"
    assert result.stdout == b""


def test_stdin_options_apply_to_every_line(
    redis_env: dict[str, str], redis_url: str, queue_name: str
) -> None:
    lines = b"1\n2\n3\n"
    args = ("queue", "send", queue_name, "e", "-", "--delay", "3600")
    result = run_cli(*args, input=lines, env=redis_env)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) == 3
    stats = queue_stats(queue_name, redis_env)
    assert (stats["ready"], stats["delayed"]) == ({"0": 0}, 3)


def test_redis_going_away_midway_stops_at_the_line_and_names_it(queue_name: str) -> None:
    """The ids of what was stored are printed; the error says where to resume."""
    from zevents.redis.server import RedisServer

    with RedisServer() as server:
        child = subprocess.Popen(
            [sys.executable, "-m", "zevents", "queue", "send", queue_name, "e", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=cli_env(ZEVENTS_REDIS_URL=server.url),
        )
        try:
            assert child.stdin is not None
            assert child.stdout is not None
            child.stdin.write(b"1\n")
            child.stdin.flush()
            first_id = child.stdout.readline()  # stored: its id is printed
            assert first_id.strip()
            server.stop()
            out, err = child.communicate(b"2\n3\n", timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(15)
    assert child.returncode == 1
    assert out == b""
    assert_one_error_line(err.decode(), "line 2 was not sent, nor any after it")
    assert "(resume with: tail -n +2)" in err.decode()
