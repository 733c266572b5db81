"""Endpoints on the command line: ``--connect ADDR`` / ``--bind ADDR`` (repeatable) on
``emit``, ``serve`` and ``bridge``, one socket binding some and connecting others, the
spread over several services, and hosts resolved when a command starts."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import DEADLINE, CliProcess, assert_one_error_line, run_cli, wait_until

Serve = Callable[..., CliProcess]


def test_emit_connect_option_after_the_arguments_sends(serve: Serve, tcp_endpoint: str) -> None:
    """``zevents emit orders.created '{"id": 1}' --connect tcp://...`` works as issue 9 says."""
    server = serve(tcp_endpoint)
    result = run_cli("emit", "orders.created", '{"id": 1}', "--connect", tcp_endpoint)
    assert result.returncode == 0, result.stderr.decode()
    assert server.wait_for_events(1) == [{"event": "orders.created", "payload": {"id": 1}}]


def test_emit_connects_to_every_e_and_connect_endpoint(
    serve: Serve, ipc_endpoint: str, tcp_endpoint: str
) -> None:
    first = serve(ipc_endpoint)
    second = serve(tcp_endpoint)
    result = run_cli("emit", "-e", ipc_endpoint, "--connect", tcp_endpoint, "--count", "4", "x")
    assert result.returncode == 0, result.stderr.decode()
    summary = result.stderr.decode().splitlines()
    assert summary[0].startswith(f"zevents emit: sent 4 events to {ipc_endpoint}, {tcp_endpoint}")
    wait_until(lambda: len(first.stdout) + len(second.stdout) == 4, "4 events in all")
    assert first.stdout, "PUSH spreads the events: some reach each service"
    assert second.stdout


def test_emit_bind_option_serves_a_connecting_service(serve: Serve, ipc_endpoint: str) -> None:
    server = serve("--connect", ipc_endpoint)
    result = run_cli("emit", "--bind", ipc_endpoint, "--timeout", "10", "bound.push", "[1, 2]")
    assert result.returncode == 0, result.stderr.decode()
    assert server.wait_for_events(1) == [{"event": "bound.push", "payload": [1, 2]}]


def test_serve_bind_option_binds_as_a_positional_endpoint(serve: Serve, ipc_endpoint: str) -> None:
    server = serve("--bind", ipc_endpoint)
    assert f"receiving on {ipc_endpoint} (pull, bound)" in server.stderr_text
    assert run_cli("emit", "-e", ipc_endpoint, "via.bind").returncode == 0
    assert server.wait_for_events(1) == [{"event": "via.bind", "payload": None}]


def test_one_serve_socket_binds_one_endpoint_and_connects_another(
    serve: Serve, short_tmp: Path
) -> None:
    bound, connected = f"ipc://{short_tmp}/bound.sock", f"ipc://{short_tmp}/connected.sock"
    server = serve(bound, "--connect", connected)
    assert f"receiving on {bound}, {connected} (pull, bound/connected)" in server.stderr_text
    to_bound = run_cli("emit", "-e", bound, "to.bound")
    assert to_bound.returncode == 0, to_bound.stderr.decode()
    to_connected = run_cli("emit", "--bind", connected, "--timeout", "10", "to.connected")
    assert to_connected.returncode == 0, to_connected.stderr.decode()
    events = server.wait_for_events(2)
    assert sorted(str(e["event"]) for e in events) == ["to.bound", "to.connected"]


def test_one_emit_socket_binds_one_endpoint_and_connects_another(
    serve: Serve, short_tmp: Path
) -> None:
    """A PUB that binds for one subscriber and connects to the other reaches both."""
    bound, connected = f"ipc://{short_tmp}/bound.sock", f"ipc://{short_tmp}/connected.sock"
    dialing = serve("--subscribe", "", "--connect", bound)
    listening = serve("--subscribe", "", connected)
    deadline = time.monotonic() + DEADLINE
    # Slow joiner: a PUB drops what it sends before a subscription reaches it; resend.
    while not (dialing.stdout and listening.stdout):
        assert time.monotonic() < deadline, "the event did not reach both subscribers"
        args = ["--socket-type", "pub", "--wait", "0.3", "--bind", bound, "--connect", connected]
        result = run_cli("emit", *args, "to.both")
        assert result.returncode == 0, result.stderr.decode()
    assert {"event": "to.both", "payload": None} in dialing.events()
    assert {"event": "to.both", "payload": None} in listening.events()


def _have_received(servers: list[CliProcess], count: int) -> bool:
    return sum(len(server.stdout) for server in servers) == count


def test_a_short_run_to_two_services_reaches_both_each_time(serve: Serve, short_tmp: Path) -> None:
    """emit waits for a peer on each endpoint, so 10 events do not all go to the first."""
    endpoints = [f"ipc://{short_tmp}/a.sock", f"ipc://{short_tmp}/b.sock"]
    servers = [serve(endpoint) for endpoint in endpoints]
    for run in range(1, 4):
        before = [len(server.stdout) for server in servers]
        result = run_cli("-q", "emit", "-e", endpoints[0], "-e", endpoints[1], "--count", "10", "x")
        assert result.returncode == 0, result.stderr.decode()
        wait_until(functools.partial(_have_received, servers, 10 * run), f"run {run}")
        got = [len(server.stdout) - seen for server, seen in zip(servers, before, strict=True)]
        assert all(count > 0 for count in got), f"run {run}: {got} events per service"


@pytest.mark.parametrize(
    "args",
    [
        ["emit", "x", "--connect", "tcp://nonexistent.invalid:5555"],
        ["emit", "-e", "tcp://127.0.0.1:5555", "-e", "tcp://nonexistent.invalid:5555", "x"],
        ["serve", "--connect", "tcp://nonexistent.invalid:5555"],
    ],
    ids=["emit-connect", "emit-second-e", "serve-connect"],
)
def test_an_unresolvable_host_is_named_and_exits_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert_one_error_line(
        result.stderr.decode(),
        "cannot resolve host 'nonexistent.invalid' of tcp://nonexistent.invalid:5555",
    )


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["emit", "x", "--connect"], "--connect"),
        (["emit", "-e", "tcp://127.0.0.1:5555", "--bind", "--timeout", "1", "x"], "--bind"),
        (["serve", "--connect"], "--connect"),
        (["serve", "--connect", "--socket-type", "sub", "tcp://127.0.0.1:5556"], "--connect"),
        (["serve", "tcp://127.0.0.1:5556", "--bind"], "--bind"),
        (["bridge", "--queue", "q", "--connect", "--pattern", "*"], "--connect"),
    ],
    ids=[
        "emit-connect",
        "emit-bind-flag",
        "serve-connect",
        "serve-old-form",
        "serve-bind",
        "bridge",
    ],
)
def test_an_endpoint_option_without_an_endpoint_shows_the_new_form(
    args: list[str], flag: str
) -> None:
    """The flags of earlier versions (``--connect`` alone) are a usage error saying how."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == b""
    assert_one_error_line(
        result.stderr.decode(), f"{flag} takes an endpoint: {flag} tcp://127.0.0.1:5555"
    )


def test_command_line_endpoints_replace_both_lists_of_a_connection(
    serve: Serve, short_tmp: Path, ipc_endpoint: str
) -> None:
    """--connect given: the connection's bind and connect endpoints are both left out."""
    config = short_tmp / "zevents.toml"
    unused = f"ipc://{short_tmp}/unused.sock"
    config.write_text(
        f'[connections.sender]\nbind = "{unused}"\nconnect = "{unused}"\nsndtimeo = 5000\n'
    )
    server = serve(ipc_endpoint)
    args = ["--config", str(config), "--connection", "sender", "--connect", ipc_endpoint]
    result = run_cli("emit", *args, "--count", "2", "replaced")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr.decode().startswith(f"zevents emit: sent 2 events to {ipc_endpoint} in ")
    assert server.wait_for_events(2) == [{"event": "replaced", "payload": None}] * 2
    assert not (short_tmp / "unused.sock").exists()
