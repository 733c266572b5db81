"""``zevents worker`` through a Redis outage: it warns, waits, and resumes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import CliProcess, cli_env, wait_until
from zevents.redis import RedisQueue
from zevents.redis.server import RedisServer


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server of this test alone: the test stops it."""
    with RedisServer() as started:
        yield started


@pytest.mark.parametrize("concurrency", ["1", "2"])
def test_worker_warns_during_an_outage_and_resumes_when_redis_is_back(
    start_cli: Callable[..., CliProcess],
    server: RedisServer,
    queue_name: str,
    tmp_path: Path,
    concurrency: str,
) -> None:
    out = tmp_path / "out.jsonl"
    url, port = server.url, server.port
    worker = start_cli(
        "worker", "--redis", url, "--queue", queue_name, "--handler", "sample_handlers:record",
        "--concurrency", concurrency, env=cli_env(ZEV_TEST_OUT=str(out)),
    )  # fmt: skip
    started = f" on {queue_name} -> "
    wait_until(lambda: worker.stderr_text.count(started) == int(concurrency), "the worker")
    server.stop()
    wait_until(lambda: "is unavailable" in worker.stderr_text, "the outage warning")
    assert "WARNING" in worker.stderr_text
    with RedisServer(port=port):
        wait_until(lambda: "Redis is reachable again" in worker.stderr_text, "the worker resumes")
        queue = RedisQueue(queue_name, url)
        try:
            queue.send("orders.created", {"id": 1})
        finally:
            queue.close()
        wait_until(lambda: out.exists() and out.read_text().strip(), "the message handled")
        assert [json.loads(line) for line in out.read_text().splitlines()] == [
            {"event": "orders.created", "payload": {"id": 1}}
        ]
        assert worker.stop() == 0, worker.stderr_text
