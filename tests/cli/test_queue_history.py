"""``zevents queue purge|archive|restore|replay|finished|clear-finished`` and ``zevents
worker --keep-finished``, against a redis-server of the tests'."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from tests.cli.conftest import assert_one_error_line, cli_env, queue_stats, run_cli
from tests.cli.test_queue import json_lines, keyspace
from tests.redis.old_messages import HOUR_MS, LONG_AGO_MS, make_old, read_as, send_old
from zevents.eventbus import Bus
from zevents.redis import JsonLinesArchive, RedisQueue, Worker

UNREACHABLE = "redis://127.0.0.1:1/0"
FINISHED_FIELDS = [
    "id",
    "event",
    "identifier",
    "attempts",
    "pid",
    "worker",
    "duration",
    "memory_before",
    "memory_after",
    "finished_at",
    "group",
]


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the test server."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _old_list_queue(url: str, raw: redis.Redis, name: str, count: int) -> list[str]:
    """``count`` messages sent to list queue ``name`` an hour apart, long ago; their ids."""
    with RedisQueue(name, url) as queue:
        return [
            send_old(raw, queue, "job.run", {"n": n}, LONG_AGO_MS + n * HOUR_MS)
            for n in range(count)
        ]


def _body(raw: redis.Redis, name: str, message_id: str) -> dict[str, Any]:
    """The stored body of a message of list queue ``name``."""
    with RedisQueue(name, client=raw) as queue:
        stored = raw.hget(queue.keys.key("msgs"), message_id)
    assert stored is not None, message_id
    body: dict[str, Any] = json.loads(stored)
    return body


# --- purge ---------------------------------------------------------------------------


def test_purge_deletes_acknowledged_stream_entries_and_with_force_the_others(
    redis_env: dict[str, str], redis_url: str, raw: redis.Redis, queue_name: str
) -> None:
    """Group ``default`` finished three old entries; ``audit`` (another program) only
    the first, holds the second pending and never read the third."""
    with RedisQueue(queue_name, redis_url, driver="stream") as queue:
        consumer = queue.consumer(lease=30.0)  # records the queue, creates its group
        RedisQueue(queue_name, redis_url, group="audit").close()
        for n in range(3):
            send_old(raw, queue, "job.run", n, LONG_AGO_MS + n)
        assert consumer.ack(consumer.take(3)) == []
        key = queue.keys.ready(0)
    raw.xack(key, "audit", read_as(raw, key, "audit", 2)[0])
    recent = run_cli("queue", "send", queue_name, "job.run", "3", env=redis_env)
    assert recent.returncode == 0, recent.stderr

    purged = run_cli("queue", "purge", queue_name, "--older-than", "1 week", env=redis_env)
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout == b"1\n"
    assert b"WARNING" not in purged.stderr
    assert raw.xlen(key) == 3

    forced = run_cli("queue", "purge", queue_name, "--older-than", "36h", "--force", env=redis_env)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout == b"2\n"
    (warning,) = forced.stderr.decode().splitlines()
    assert " WARNING zevents.cli.history: deleted 2 unacknowledged message(s)" in warning
    assert raw.xlen(key) == 1  # the recent one


def test_purge_of_a_list_queue_deletes_nothing_without_force_and_says_why(
    redis_env: dict[str, str], redis_url: str, raw: redis.Redis, queue_name: str
) -> None:
    _old_list_queue(redis_url, raw, queue_name, 2)
    kept = run_cli("queue", "purge", queue_name, "--older-than", "90 min", env=redis_env)
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout == b"0\n"
    assert "a list queue deletes a message once it is finished" in kept.stderr.decode()
    assert queue_stats(queue_name, redis_env)["ready"] == {"0": 2}
    forced = run_cli(
        "queue", "purge", queue_name, "--older-than", "2 days", "--force", env=redis_env
    )
    assert forced.stdout == b"2\n", forced.stderr
    assert "deleted 2 unacknowledged message(s)" in forced.stderr.decode()
    assert queue_stats(queue_name, redis_env)["ready"] == {"0": 0}


# --- archive and restore --------------------------------------------------------------


def test_archive_then_restore_by_id_keeps_the_original_id_then_the_rest_with_all(
    redis_env: dict[str, str], redis_url: str, raw: redis.Redis, queue_name: str, tmp_path: Path
) -> None:
    old = _old_list_queue(redis_url, raw, queue_name, 3)
    with RedisQueue(queue_name, redis_url) as queue:
        queue.send("job.run", {"n": "recent"})
    where = tmp_path / "archive"
    store = ("--archive", str(where))

    moved = run_cli(
        "queue", "archive", queue_name, "--older-than", "1 week", "--force", *store, env=redis_env
    )
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout == b"3\n"
    assert (where / (urllib.parse.quote(queue_name, safe="") + ".jsonl")).is_file()
    assert sorted(r.id for r in JsonLinesArchive(where).read(queue_name)) == sorted(old)
    assert queue_stats(queue_name, redis_env)["ready"] == {"0": 1}

    one = run_cli("queue", "restore", queue_name, "--id", old[1], *store, env=redis_env)
    assert one.returncode == 0, one.stderr
    ((original, arrow, new),) = [line.split() for line in one.stdout.decode().splitlines()]
    assert (original, arrow) == (old[1], "->")
    assert new != old[1]
    body = _body(raw, queue_name, new)
    assert (body["original_id"], body["payload"]) == (old[1], {"n": 1})
    assert body["original_enqueued_at"] == LONG_AGO_MS + HOUR_MS

    rest = run_cli("queue", "restore", queue_name, "--all", *store, env=redis_env)
    assert rest.returncode == 0, rest.stderr
    pairs = [line.split(" -> ") for line in rest.stdout.decode().splitlines()]
    assert [original for original, _ in pairs] == [old[0], old[2]]  # in their first order
    assert [_body(raw, queue_name, new)["original_id"] for _, new in pairs] == [old[0], old[2]]
    assert JsonLinesArchive(where).read(queue_name) == []
    assert queue_stats(queue_name, redis_env)["ready"] == {"0": 4}


def test_archive_goes_to_the_data_directory_by_default(
    redis_url: str, raw: redis.Redis, queue_name: str, tmp_path: Path
) -> None:
    _old_list_queue(redis_url, raw, queue_name, 1)
    env = cli_env(ZEVENTS_REDIS_URL=redis_url, ZEVENTS_HOME=str(tmp_path / "home"))
    moved = run_cli("queue", "archive", queue_name, "--older-than", "1d", "--force", env=env)
    assert moved.stdout == b"1\n", moved.stderr
    (record,) = JsonLinesArchive(tmp_path / "home" / "archive").read(queue_name)
    assert record.body["payload"] == {"n": 0}
    restored = run_cli("queue", "restore", queue_name, "--all", env=env)
    assert restored.stdout.decode().startswith(f"{record.id} -> "), restored.stderr


def test_restoring_an_id_the_archive_lacks_names_it_and_exits_one(
    redis_env: dict[str, str], redis_url: str, raw: redis.Redis, queue_name: str, tmp_path: Path
) -> None:
    (kept,) = _old_list_queue(redis_url, raw, queue_name, 1)
    store = ("--archive", str(tmp_path / "one.jsonl"))
    run_cli("queue", "archive", queue_name, "--older-than", "1d", "--force", *store, env=redis_env)
    result = run_cli(
        "queue", "restore", queue_name, "--id", kept, "--id", "0-0", *store, env=redis_env
    )
    assert result.returncode == 1
    assert result.stdout.decode().startswith(f"{kept} -> ")
    assert_one_error_line(result.stderr.decode(), "not in the archive")
    assert result.stderr.decode().rstrip().endswith(": 0-0")


# --- replay --------------------------------------------------------------------------


def test_replay_prints_one_json_object_merged_from_the_archive_and_the_queue(
    redis_env: dict[str, str], redis_url: str, raw: redis.Redis, queue_name: str, tmp_path: Path
) -> None:
    with RedisQueue(queue_name, redis_url) as queue:
        for n, payload in enumerate(
            [{"status": "created", "total": 30}, {"status": "paid", "card": "visa"}]
        ):
            sent = queue.send("order.changed", payload, identifier="order-7")
            make_old(raw, queue, sent, LONG_AGO_MS + n * HOUR_MS)
        queue.send("order.changed", {"status": "other"}, identifier="order-8")
    store = ("--archive", str(tmp_path / "archive"))
    moved = run_cli(
        "queue", "archive", queue_name, "--older-than", "1w", "--force", *store, env=redis_env
    )
    assert moved.stdout == b"2\n", moved.stderr
    with RedisQueue(queue_name, redis_url) as queue:
        queue.send("order.changed", {"status": "shipped"}, identifier="order-7")
    replay = ("queue", "replay", queue_name, "--identifier", "order-7", *store)

    result = run_cli(*replay, env=redis_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b'{"status":"shipped","total":30,"card":"visa"}\n'

    # 10:00Z and 11:00Z were sent; 19:30 in Tokyo (no zone given: local) is 10:30Z.
    tokyo = {**redis_env, "TZ": "Asia/Tokyo"}
    early = run_cli(*replay, "--until", "2026-01-01T19:30", env=tokyo)
    assert early.stdout == b'{"status":"created","total":30}\n', early.stderr
    zoned = run_cli(*replay, "--until", "2026-01-01T11:00:00Z", env=redis_env)
    assert zoned.stdout == b'{"status":"paid","total":30,"card":"visa"}\n', zoned.stderr
    nothing = run_cli(*replay, "--until", "2025-12-31", env=redis_env)
    assert nothing.stdout == b"{}\n", nothing.stderr
    other = run_cli(*replay[:4], "order-8", *store, env=redis_env)
    assert other.stdout == b'{"status":"other"}\n', other.stderr


# --- finished records ------------------------------------------------------------------


def _work(queue_name: str, env: dict[str, str], *extra: str) -> None:
    """Run ``zevents worker`` on the queue until it has finished two messages."""
    handler = ("--handler", "sample_handlers:fail_on_flag")
    args = ("worker", "--queue", queue_name, *handler, "--max-messages", "2", *extra)
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("supervised", [(), ("--max-restarts", "0")], ids=["alone", "supervised"])
def test_a_worker_with_keep_finished_leaves_records_that_are_listed_and_cleared(
    redis_env: dict[str, str], redis_url: str, queue_name: str, supervised: tuple[str, ...]
) -> None:
    with RedisQueue(queue_name, redis_url) as queue:
        ids = [queue.send("job.run", {"n": n}, identifier=f"job-{n}") for n in (1, 2)]
    _work(queue_name, redis_env, "--keep-finished", "14d", *supervised)

    records = json_lines(run_cli("queue", "finished", queue_name, env=redis_env))
    assert [list(record) for record in records] == [FINISHED_FIELDS] * 2
    assert [(r["id"], r["event"], r["identifier"]) for r in records] == [
        (ids[0], "job.run", "job-1"),
        (ids[1], "job.run", "job-2"),
    ]
    assert {r["attempts"] for r in records} == {1}
    assert len({r["pid"] for r in records}) == 1
    assert records[0]["pid"] not in (0, os.getpid())
    assert all(r["memory_before"] > 0 and r["memory_after"] > 0 for r in records)
    assert all(r["duration"] >= 0 and r["group"] is None for r in records)
    newest = json_lines(run_cli("queue", "finished", queue_name, "--limit", "1", env=redis_env))
    assert newest == records[1:]
    table = run_cli("queue", "finished", queue_name, "--table", env=redis_env)
    assert table.returncode == 0, table.stderr
    assert table.stdout.decode().splitlines()[0].split()[:3] == ["id", "event", "identifier"]
    assert ids[0] in table.stdout.decode()

    clear = ("queue", "clear-finished", queue_name)
    assert run_cli(*clear, "--older-than", "14d", env=redis_env).stdout == b"0\n"
    assert run_cli(*clear, env=redis_env).stdout == b"2\n"
    assert json_lines(run_cli("queue", "finished", queue_name, env=redis_env)) == []


def test_a_worker_without_keep_finished_stores_no_record(
    redis_env: dict[str, str], redis_url: str, raw: redis.Redis, queue_name: str
) -> None:
    with RedisQueue(queue_name, redis_url) as queue:
        queue.send_many([("job.run", 1), ("job.run", 2)])
        finished_key = queue.keys.key("finished")
    _work(queue_name, redis_env)
    assert queue_stats(queue_name, redis_env)["ready"] == {"0": 0}
    assert raw.exists(finished_key) == 0
    assert run_cli("queue", "finished", queue_name, env=redis_env).stdout == b""


# --- what is refused: at the start, one line, status 2 ---------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("purge", "q", "--older-than", "2 fortnights"), "--older-than: unknown unit"),
        (("purge", "q", "--older-than", "soon"), "e.g. '90 min', '2 days', '1 week', '36h'"),
        (("purge", "q"), "Missing option '--older-than'"),
        (("archive", "q", "--older-than", "-1h"), "--older-than: '-1h' is not a duration"),
        (("clear-finished", "q", "--older-than", "3 months"), "--older-than: unknown unit"),
        (("replay", "q", "--identifier", "x", "--until", "yesterday"), "ISO 8601"),
        (("replay", "q", "--identifier", "x", "--until", "2026-13-01"), "--until: '2026-13-01'"),
        (("replay", "q"), "Missing option '--identifier'"),
        (("restore", "q"), "say which archived messages to restore: --all, or --id ID"),
        (("restore", "q", "--all", "--id", "1-1"), "--all restores every archived message"),
        (("restore", "q", "--id", ""), "--id must not be empty"),
        (("finished", "q", "--limit", "0"), "'--limit'"),
        (("replay", "q", "--identifier", "x", "--group", "audit"), "No such option '--group'"),
    ],
)
def test_bad_options_are_usage_errors_before_redis_is_reached(
    args: tuple[str, ...], expected: str
) -> None:
    result = run_cli("queue", *args, "--redis", UNREACHABLE, env=cli_env())
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), expected)
    assert result.stdout == b""


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0s", "--keep-finished must be longer than 0"), ("a fortnight", "--keep-finished:")],
)
def test_a_bad_keep_finished_is_a_usage_error_before_redis_is_reached(
    value: str, expected: str
) -> None:
    args = ("worker", "--queue", "q", "--handler", "sample_handlers:record")
    result = run_cli(*args, "--keep-finished", value, "--redis", UNREACHABLE, env=cli_env())
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), expected)


@pytest.mark.parametrize(
    "args",
    [
        ("purge", "--older-than", "1h"),
        ("archive", "--older-than", "1h", "--force"),
        ("restore", "--all"),
        ("replay", "--identifier", "order-7"),
        ("finished",),
        ("clear-finished",),
    ],
    ids=lambda args: args[0],
)
def test_an_unknown_queue_is_named_with_the_known_ones_and_nothing_is_written(
    redis_env: dict[str, str],
    redis_url: str,
    queue_name: str,
    args: tuple[str, ...],
    tmp_path: Path,
) -> None:
    with RedisQueue(queue_name, redis_url) as known:
        known.send("orders.created", {"id": 1}, identifier="order-7")
    before = keyspace(redis_url)
    typo = f"{queue_name}-typo"
    store = ("--archive", str(tmp_path)) if args[0] in ("archive", "restore", "replay") else ()
    result = run_cli("queue", args[0], typo, *args[1:], *store, env=redis_env)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), f"no queue '{typo}'")
    assert queue_name in result.stderr.decode()
    assert result.stdout == b""
    assert keyspace(redis_url) == before


# --- replay and finished only read ------------------------------------------------------


def _command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the server started (``INFO commandstats``)."""
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


def _writing(client: redis.Redis, commands: set[str]) -> list[str]:
    """Those of ``commands`` that may write: flagged ``write`` by Redis, or scripts."""
    table: Any = client.command()  # every command, with its flags
    found = []
    for name in sorted(commands):
        base = name.split("|")[0]
        flags = {str(flag) for flag in table[base]["flags"]}
        if "write" in flags or base in ("eval", "evalsha", "script", "fcall"):
            found.append(name)
    return found


def test_replay_and_finished_write_nothing_even_on_a_stream_queue_with_two_groups(
    redis_env: dict[str, str], redis_url: str, raw: redis.Redis, queue_name: str, tmp_path: Path
) -> None:
    """Key dump and the server's command counters are the same after: no write command,
    no script, no group created."""
    with RedisQueue(queue_name, redis_url, driver="stream", keep_finished="1d") as queue:
        queue.send("order.changed", {"status": "created"}, identifier="order-7")
        queue.send("order.changed", {"status": "paid"}, identifier="order-7")
        RedisQueue(queue_name, redis_url, group="audit").close()  # another reader's group
        Worker(queue, Bus(), max_messages=1).run()  # "default" finishes the first
        assert len(queue.finished()) == 1
    store = ("--archive", str(tmp_path / "archive.jsonl"))
    before = keyspace(redis_url)
    groups = raw.xinfo_groups(queue.keys.ready(0))
    calls = _command_calls(raw)
    for args in (
        ("replay", queue_name, "--identifier", "order-7", *store),
        ("replay", queue_name, "--identifier", "order-7", "--until", "2030-01-01", *store),
        ("finished", queue_name),
        ("finished", queue_name, "--table", "--limit", "1"),
    ):
        result = run_cli("queue", *args, env=redis_env)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout, args
    grown = {name for name, count in _command_calls(raw).items() if count > calls.get(name, 0)}
    assert {"xrange", "hscan", "zrange"} <= grown  # it did read
    assert _writing(raw, grown) == []
    assert keyspace(redis_url) == before
    assert raw.xinfo_groups(queue.keys.ready(0)) == groups
    replayed = run_cli(
        "queue", "replay", queue_name, "--identifier", "order-7", *store, env=redis_env
    )
    assert orjson.loads(replayed.stdout) == {"status": "paid"}  # "audit" keeps both entries
