"""``zevents queue SUBCOMMAND --help``: an example, and a text for every option."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from tests.cli.conftest import cli_env, run_cli
from zevents.cli.app import cli
from zevents.cli.queue import queue

SUBCOMMANDS = sorted(queue.commands)


def test_every_subcommand_is_covered() -> None:
    assert SUBCOMMANDS == [
        "archive",
        "clear-finished",
        "failed",
        "finished",
        "flush",
        "list",
        "purge",
        "replay",
        "restore",
        "retry",
        "send",
        "shutdown",
        "stats",
        "workers",
    ]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_of_each_subcommand_shows_an_example_of_itself(name: str) -> None:
    result = run_cli("queue", name, "--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.startswith(f"Usage: zevents queue {name} ")
    assert "Example" in out
    assert f"  zevents queue {name}" in out


def test_queues_is_queue_list_by_another_name() -> None:
    result = run_cli("queues", "--help")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.startswith("Usage: zevents queues ")
    assert "  zevents queue list" in out
    assert cli.commands["queues"] is queue.commands["list"]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_option_of_each_subcommand_has_a_help_text(name: str) -> None:
    command = queue.commands[name]
    options = [p for p in command.params if isinstance(p, click.Option)]
    assert options  # every one takes --redis at least
    assert [p.opts[0] for p in options if not p.help] == []


def test_the_command_line_imports_rich_only_when_it_draws() -> None:
    """``zevents emit`` starts fast: loading the commands does not load rich."""
    code = "import sys, zevents.cli.app; print(sorted(m for m in sys.modules if 'rich' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=cli_env(), timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"[]\n"
