"""Named Redis connections in the config file: picked by name, the default one, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from zevents.errors import ConfigError
from zevents.redis import RedisQueue
from zevents.redis.connections import redis_connection, resolve_redis


def write_config(directory: Path, text: str) -> Path:
    path = directory / "zevents.toml"
    path.write_text(text)
    return path


def test_a_named_connection_gives_its_url_and_retry_settings(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host_port = url.removeprefix("redis://").removesuffix("/0")
    write_config(
        tmp_path,
        f'[redis.other]\nurl = "redis://{host_port}"\ndb = 3\nmax_attempts = 9\n'
        'backoff = "linear"\nbackoff_base = 0.5\n',
    )
    monkeypatch.chdir(tmp_path)
    found = redis_connection("other")
    assert found is not None
    assert found.url == f"redis://{host_port}/3"
    assert (found.retry.max_attempts, found.retry.backoff, found.retry.base) == (9, "linear", 0.5)
    with RedisQueue("jobs", connection="other") as queue:
        queue.send("x", 1)
        assert queue.url == f"redis://{host_port}/3"
        assert int(queue.client.connection_pool.connection_kwargs["db"]) == 3


def test_the_default_connection_is_used_when_no_url_is_given(
    tmp_path: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, f'[redis.default]\nurl = "{url}"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZEVENTS_REDIS_URL", raising=False)
    assert resolve_redis(None)[0] == url
    monkeypatch.setenv("ZEVENTS_REDIS_URL", "redis://127.0.0.1:1/0")
    assert resolve_redis(None)[0] == "redis://127.0.0.1:1/0"  # the environment wins


def test_a_password_is_folded_into_the_url(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, '[redis.secure]\nurl = "redis://cache:6380"\npassword = "p@ss/word"\n'
    )
    found = redis_connection("secure", path)
    assert found is not None
    assert found.url == "redis://:p%40ss%2Fword@cache:6380"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('url = "unix:///run/redis.sock"', "unix:///run/redis.sock"),
        ('url = "unix:///run/redis.sock"\ndb = 2', "unix:///run/redis.sock?db=2"),
        ('url = "unix:///run/r.sock?db=1"\ndb = 4', "unix:///run/r.sock?db=4"),
    ],
)
def test_a_unix_socket_url_keeps_its_slashes(tmp_path: Path, table: str, expected: str) -> None:
    found = redis_connection("local", write_config(tmp_path, f"[redis.local]\n{table}\n"))
    assert found is not None
    assert found.url == expected


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[redis.x]\nurl = "redis://h:1/abc"\n', "database 'abc'"),
        ("[redis.x]\ndb = -1\n", "db must be a whole number"),
        ("[redis.x]\ncolour = 1\n", "unknown key"),
        ("[redis.x]\nmax_attempts = 0\n", "max_attempts must be at least 1"),
    ],
)
def test_a_bad_connection_table_is_a_config_error(tmp_path: Path, table: str, message: str) -> None:
    path = write_config(tmp_path, table)
    with pytest.raises(ConfigError, match=message):
        redis_connection("x", path)


def test_a_name_that_is_neither_a_url_nor_a_connection_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, '[redis.default]\nurl = "redis://h:1/0"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"'nope' is neither a Redis URL.*zevents\.toml"):
        resolve_redis("nope")
