"""The ``zevents`` group: its help, its logging, and errors as exit codes.

Every bad argument exits with status 2 and one ``Error:`` line, never a traceback.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.cli.conftest import assert_one_error_line, cli_env, run_cli
from zevents.cli import cli
from zevents.cli.app import EXIT_DELIVERY, EXIT_INTERRUPTED, EXIT_USAGE, exit_code_for
from zevents.errors import (
    ConfigError,
    DeliveryTimeout,
    EndpointError,
    MissingExtraError,
    QueueError,
    QueueUnavailable,
    RemoteError,
)

BAD_ARGUMENTS = {
    "serve-unknown-socket-type": (
        ["serve", "--socket-type", "push", "tcp://127.0.0.1:5555"],
        "'--socket-type'",
    ),
    "emit-unknown-socket-type": (
        ["emit", "-e", "tcp://127.0.0.1:5555", "--socket-type", "pull", "x"],
        "'--socket-type'",
    ),
    "serve-malformed-endpoint": (["serve", "localhost:5555"], "tcp://HOST:PORT"),
    "emit-malformed-endpoint": (["emit", "-e", "tcp://127.0.0.1", "x"], "no port"),
    "payload-not-json": (["emit", "-e", "tcp://127.0.0.1:5555", "x", "hello"], "not JSON"),
    "handler-not-importable": (
        ["serve", "--handler", "no_such_module_zev:f", "tcp://127.0.0.1:5555"],
        "cannot import 'no_such_module_zev'",
    ),
    "handler-without-module": (
        ["serve", "--handler", "nocolon", "tcp://127.0.0.1:5555"],
        "module:name",
    ),
    "handler-missing-attribute": (
        ["serve", "--handler", "json:no_such_function", "tcp://127.0.0.1:5555"],
        "has no 'no_such_function'",
    ),
    "handler-not-callable": (
        ["serve", "--handler", "json:__name__", "tcp://127.0.0.1:5555"],
        "not a callable",
    ),
    "serve-no-endpoint": (["serve"], "no endpoint"),
    "emit-no-endpoint": (["emit", "x"], "no endpoint"),
    "config-without-connection": (
        ["serve", "--config", "zevents.toml", "tcp://127.0.0.1:5555"],
        "--connection NAME",
    ),
    "subscribe-on-pull": (
        ["serve", "--socket-type", "pull", "--subscribe", "a", "tcp://127.0.0.1:5555"],
        "--socket-type sub",
    ),
    "confirmed-on-pull": (
        ["serve", "--confirmed", "--socket-type", "pull", "tcp://127.0.0.1:5555"],
        "confirmed delivery needs",
    ),
    "confirmed-on-pub": (
        ["emit", "-e", "tcp://127.0.0.1:5555", "--confirmed", "--socket-type", "pub", "x"],
        "confirmed delivery needs",
    ),
    "count-zero": (["emit", "-e", "tcp://127.0.0.1:5555", "--count", "0", "x"], "'--count'"),
    "timeout-nan": (
        ["emit", "-e", "tcp://127.0.0.1:5555", "--timeout", "nan", "x"],
        "not a finite number",
    ),
    "timeout-huge": (
        ["emit", "-e", "tcp://127.0.0.1:5555", "--timeout", "1e12", "x"],
        "more than a year",
    ),
    "wait-inf": (["emit", "-e", "tcp://127.0.0.1:5555", "--wait", "inf", "x"], "not a finite"),
    "poll-timeout-nan": (
        ["serve", "--poll-timeout", "nan", "tcp://127.0.0.1:5555"],
        "not a finite number",
    ),
    "poll-timeout-tiny": (
        ["serve", "--poll-timeout", "0.00001", "tcp://127.0.0.1:5555"],
        "poll_timeout must be",
    ),
    "port-out-of-range": (["emit", "-e", "tcp://127.0.0.1:99999", "x"], "no valid port"),
    "timeout-zero": (["emit", "-e", "tcp://127.0.0.1:5555", "--timeout", "0", "x"], "'--timeout'"),
    "poll-timeout-negative": (
        ["serve", "--poll-timeout", "-1", "tcp://127.0.0.1:5555"],
        "'--poll-timeout'",
    ),
    "empty-pattern": (["serve", "--pattern", "", "tcp://127.0.0.1:5555"], "pattern is empty"),
    "event-dash-with-payload": (["emit", "-e", "tcp://127.0.0.1:5555", "-", "1"], "no PAYLOAD"),
    "reserved-event": (
        ["emit", "-e", "tcp://127.0.0.1:5555", "zevents.push.error"],
        "reserved",
    ),
    "unknown-option": (["serve", "--bogus", "tcp://127.0.0.1:5555"], "No such option"),
    "unknown-command": (["launch"], "No such command"),
    "missing-event": (["emit", "-e", "tcp://127.0.0.1:5555"], "Missing argument 'EVENT'"),
    "emit-connect-without-endpoint": (
        ["emit", "x", "--connect"],
        "--connect takes an endpoint: --connect tcp://127.0.0.1:5555",
    ),
    "serve-bind-without-endpoint": (
        ["serve", "--bind", "--poll-timeout", "1"],
        "--bind takes an endpoint: --bind tcp://127.0.0.1:5555",
    ),
    "emit-unresolvable-host": (
        ["emit", "--connect", "tcp://nonexistent.invalid:5555", "x"],
        "cannot resolve host 'nonexistent.invalid'",
    ),
}


@pytest.mark.parametrize("verbosity", [[], ["-v"]], ids=["default", "verbose"])
@pytest.mark.parametrize(("args", "expected"), BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_argument_exits_2_with_one_error_line(
    args: list[str],
    expected: str,
    verbosity: list[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Logging is on before the command checks its options: still nothing but the error."""
    monkeypatch.chdir(tmp_path)  # no stray zevents.toml in the way
    monkeypatch.delenv("ZEVENTS_CONFIG", raising=False)
    result = CliRunner().invoke(cli, [*verbosity, *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert_one_error_line(result.stderr, expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["serve", "--handler", "no_such_module_zev:f", "tcp://127.0.0.1:5555"], "cannot import"),
        (["emit", "-e", "tcp://127.0.0.1:5555", "orders.created", "{id: 1}"], "not JSON"),
        (["serve", "--socket-type", "xpub", "tcp://127.0.0.1:5555"], "'--socket-type'"),
        (["serve", "--handler", "sample_handlers:NOT_CALLABLE", "ipc:///tmp/x"], "not a callable"),
    ],
    ids=["handler-import", "payload", "socket-type", "handler-not-callable"],
)
def test_bad_argument_in_a_real_process_exits_2_without_traceback(
    args: list[str], expected: str
) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == b""
    assert_one_error_line(result.stderr.decode(), expected)


def test_unknown_connection_names_the_files_searched(tmp_path: Path) -> None:
    config = tmp_path / "zevents.toml"
    config.write_text('[connections.other]\nbind = "tcp://127.0.0.1:5555"\n')
    result = run_cli("serve", "--config", str(config), "--connection", "missing")
    assert result.returncode == 2
    expected = f"unknown connection 'missing'; searched: {config}"
    assert_one_error_line(result.stderr.decode(), expected)


def test_endpoint_already_in_use_exits_2_naming_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", f"tcp://127.0.0.1:{port}", env=cli_env())
    assert result.returncode == 2
    assert_one_error_line(
        result.stderr.decode(), f"cannot bind tcp://127.0.0.1:{port}: Address already in use"
    )


def test_module_help_lists_every_command_and_the_exit_codes() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    assert out.startswith("Usage: zevents ")
    for command in ("serve", "emit", "version"):
        assert f"  {command} " in out
    for command in ("bridge", "worker", "queue"):
        assert f"  {command} " in out
    assert "2 usage error" in out
    assert result.stderr == b""


HELP_EXAMPLES = [
    (["serve"], "zevents serve tcp://127.0.0.1:5555"),
    (["emit"], "zevents emit -e tcp://127.0.0.1:5555 orders.created"),
    (["version"], "zevents version"),
    (["bridge"], "zevents bridge --queue orders"),
    (["worker"], "zevents worker --queue orders --handler"),
    (["queue"], "zevents queue stats orders"),
    (["queue", "stats"], "zevents queue stats orders"),
    (["queue", "failed"], "zevents queue failed orders"),
    (["queue", "retry"], "zevents queue retry orders"),
    (["queue", "flush"], "zevents queue flush orders"),
    (["queue", "workers"], "zevents queue workers"),
    (["queue", "shutdown"], "zevents queue shutdown"),
]


@pytest.mark.parametrize(
    ("command", "example"), HELP_EXAMPLES, ids=[" ".join(c) for c, _ in HELP_EXAMPLES]
)
def test_each_command_help_shows_an_example(command: list[str], example: str) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    assert out.startswith(f"Usage: zevents {' '.join(command)} ")
    assert "Examples:" in out
    assert example in out


@pytest.mark.parametrize("command", ["serve", "emit", "bridge"])
def test_socket_commands_show_the_endpoint_options_and_verbosity_in_help(command: str) -> None:
    out = run_cli(command, "--help").stdout.decode()
    for option in ("--connect ENDPOINT", "--bind ENDPOINT", "-v, --verbose", "-q, --quiet"):
        assert option in out
    assert "--connect tcp://" in out.split("Examples:")[1]


def test_every_option_has_help() -> None:
    """Each option of each command says what it does in ``--help``."""
    commands: list[click.Command] = [cli]
    missing = []
    while commands:
        command = commands.pop()
        if isinstance(command, click.Group):
            commands.extend(command.commands.values())
        for param in command.params:
            if isinstance(param, click.Option) and not param.help:
                missing.append(f"{command.name} {param.opts[0]}")
    assert missing == []


def test_bare_command_prints_the_help_on_stderr_and_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert result.stdout == b""
    assert result.stderr.decode().startswith("Usage: zevents [OPTIONS] COMMAND")
    assert "Error:" not in result.stderr.decode()


def test_logging_is_put_back_after_a_command_run_in_process(tcp_endpoint: str) -> None:
    """The group logs to stderr while a command runs; an embedding program keeps its own."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    args = ["-v", "emit", "-e", tcp_endpoint, "--timeout", "0.05", "nobody.listens"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "DEBUG zevents._sockets: opened send push socket" in result.stderr
    assert root.level == level
    assert root.handlers == handlers


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (click.UsageError("bad"), EXIT_USAGE),
        (ConfigError("bad option", option="serve"), EXIT_USAGE),
        (EndpointError("cannot bind"), EXIT_USAGE),
        (QueueError("bad queue"), EXIT_USAGE),
        (MissingExtraError("pip install 'zevents[redis]'"), EXIT_USAGE),
        (QueueUnavailable("Redis is down"), EXIT_DELIVERY),
        (DeliveryTimeout("no peer", sent=False), EXIT_DELIVERY),
        (RemoteError("ValueError: boom"), EXIT_DELIVERY),
        (KeyboardInterrupt(), EXIT_INTERRUPTED),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else "",
)
def test_exit_code_for_each_kind_of_error(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code
