"""``zevents queue --redis URL|NAME``: which Redis the queue commands use, and the
embedded one when none is named."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import CliProcess, assert_one_error_line, cli_env, run_cli
from tests.cli.test_queue import json_lines
from zevents.errors import QueueNotFound
from zevents.redis import RedisQueue
from zevents.redis.embedded import EmbeddedRedis


def _no_url_env(**extra: str) -> dict[str, str]:
    """A CLI child's environment with no Redis URL at all."""
    env = cli_env(**extra)
    env.pop("ZEVENTS_REDIS_URL", None)
    return env


@pytest.mark.parametrize(
    "command",
    [("stats", "q"), ("failed", "q"), ("send", "q", "e"), ("list",), ("workers",)],
    ids=["stats", "failed", "send", "list", "workers"],
)
def test_a_url_redis_py_would_misread_is_a_usage_error(command: tuple[str, ...]) -> None:
    """db ``abc`` would silently be db 0; the URL is refused before anything connects."""
    result = run_cli("queue", *command, "--redis", "redis://127.0.0.1:6379/abc")
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), "Invalid value for '--redis'")
    assert "abc" in result.stderr.decode()


def test_an_unknown_connection_name_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("queue", "stats", "q", "--redis", "nosuch", env=_no_url_env(), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert_one_error_line(result.stderr.decode(), "'nosuch' is neither a Redis URL")


def test_a_connection_of_zevents_toml_in_the_working_directory_is_picked_by_name(
    tmp_path: Path, redis_url: str, queue_name: str
) -> None:
    (tmp_path / "zevents.toml").write_text(f'[redis.shop]\nurl = "{redis_url}"\n')
    env = _no_url_env(ZEVENTS_HOME=str(tmp_path / "no-embedded-here"))
    sent = run_cli("queue", "send", queue_name, "e", "7", "--redis", "shop", env=env, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    with RedisQueue(queue_name, redis_url) as queue:
        assert queue.stats()["ready"] == {0: 1}
    stats = run_cli("queue", "stats", queue_name, "--redis", "shop", env=env, cwd=tmp_path)
    (counts,) = json_lines(stats)
    assert counts["ready"] == {"0": 1}
    assert not (tmp_path / "no-embedded-here").exists()  # the embedded one never started


@pytest.fixture
def embedded_home(short_tmp: Path) -> Iterator[Path]:
    """A data directory for the embedded Redis (short: its unix socket lives there);
    the server is shut down after, in case a test failed midway."""
    home = short_tmp / "home"
    yield home
    EmbeddedRedis(home).shutdown()


def test_with_no_url_send_then_stats_use_the_embedded_redis_and_keep_the_data(
    embedded_home: Path, short_tmp: Path
) -> None:
    env = _no_url_env(ZEVENTS_HOME=str(embedded_home))
    sent = run_cli("queue", "send", "orders", "orders.created", '{"id": 1}', env=env, cwd=short_tmp)
    assert sent.returncode == 0, sent.stderr
    assert "started the embedded Redis" in sent.stderr.decode()
    assert not EmbeddedRedis(embedded_home).is_running()  # its only user exited
    (stats,) = json_lines(run_cli("queue", "stats", "orders", env=env, cwd=short_tmp))
    assert stats["ready"] == {"0": 1}
    assert not EmbeddedRedis(embedded_home).is_running()
    (listed,) = json_lines(run_cli("queue", "list", env=env, cwd=short_tmp))
    assert (listed["name"], listed["ready"]) == ("orders", {"0": 1})
    assert not EmbeddedRedis(embedded_home).is_running()


def test_a_watch_stopped_by_sigterm_exits_zero_and_stops_the_embedded_redis(
    start_cli: Callable[..., CliProcess], embedded_home: Path, short_tmp: Path
) -> None:
    env = _no_url_env(ZEVENTS_HOME=str(embedded_home))
    assert run_cli("queue", "send", "orders", "e", env=env, cwd=short_tmp).returncode == 0
    watching = start_cli("queue", "list", "--watch", "0.05", env=env, cwd=short_tmp)
    watching.wait_for_events(2)
    assert EmbeddedRedis(embedded_home).is_running()
    assert watching.stop(signal.SIGTERM) == 0, watching.stderr_text
    assert not EmbeddedRedis(embedded_home).is_running()  # it was the last user


def test_a_named_connection_without_a_url_is_the_embedded_redis_not_the_environment(
    embedded_home: Path, short_tmp: Path, redis_url: str, queue_name: str
) -> None:
    """``[redis.local]`` with retry settings only names the embedded Redis, even while
    ``$ZEVENTS_REDIS_URL`` points elsewhere (the environment is the default only)."""
    (short_tmp / "zevents.toml").write_text("[redis.local]\nmax_attempts = 2\n")
    env = cli_env(ZEVENTS_HOME=str(embedded_home), ZEVENTS_REDIS_URL=redis_url)
    args = ("queue", "send", queue_name, "e", "1", "--redis", "local")
    sent = run_cli(*args, env=env, cwd=short_tmp)
    assert sent.returncode == 0, sent.stderr
    assert "started the embedded Redis" in sent.stderr.decode()
    with RedisQueue(queue_name, redis_url) as elsewhere, pytest.raises(QueueNotFound):
        elsewhere.stats()  # nothing went to the environment's server
    stats = run_cli("queue", "stats", queue_name, "--redis", "local", env=env, cwd=short_tmp)
    (counts,) = json_lines(stats)
    assert counts["ready"] == {"0": 1}
