"""``zevents queue``: inspecting queues, against a redis-server of the tests'."""

from __future__ import annotations

import pytest

from tests.cli.conftest import cli_env, run_cli


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


def test_stats_of_a_new_queue_counts_nothing(redis_env: dict[str, str], queue_name: str) -> None:
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


def test_missing_redis_url_is_a_usage_error() -> None:
    env = cli_env()
    env.pop("ZEVENTS_REDIS_URL", None)
    result = run_cli("queue", "stats", "q", env=env)
    assert result.returncode == 2
    assert "ZEVENTS_REDIS_URL" in result.stderr.decode()
