"""``--help`` and ``version`` from a real ``python -m zevents``."""

from __future__ import annotations

import pytest

import zevents
from tests.cli.conftest import run_cli


def test_module_help_lists_every_command_and_the_exit_codes() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    assert out.startswith("Usage: zevents ")
    for command in ("serve", "emit", "version"):
        assert f"  {command} " in out
    assert "2 usage error" in out
    assert result.stderr == b""


@pytest.mark.parametrize(
    ("command", "example"),
    [
        ("serve", "zevents serve tcp://127.0.0.1:5555"),
        ("emit", "zevents emit -e tcp://127.0.0.1:5555 orders.created"),
        ("version", "zevents version"),
    ],
)
def test_each_command_help_shows_an_example(command: str, example: str) -> None:
    result = run_cli(command, "--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    assert out.startswith(f"Usage: zevents {command} ")
    assert example in out


def test_version_prints_the_package_and_libzmq_versions() -> None:
    result = run_cli("version")
    assert result.returncode == 0
    line = result.stdout.decode().strip()
    assert line.startswith(f"zevents {zevents.__version__} (pyzmq ")
    assert "libzmq " in line
    assert "\n" not in line


def test_bare_command_prints_the_help_on_stderr_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode().startswith("Usage: zevents [OPTIONS] COMMAND")
    assert "Error:" not in result.stderr.decode()
