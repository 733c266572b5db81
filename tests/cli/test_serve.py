"""``zevents serve`` in a real process, fed by ``zevents emit`` processes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.cli.conftest import DEADLINE, CliProcess, cli_env, run_cli, wait_until

Serve = Callable[..., CliProcess]


def _emit(endpoint: str, *args: str, input: bytes | None = None) -> None:
    result = run_cli("emit", "-e", endpoint, *args, input=input)
    assert result.returncode == 0, result.stderr.decode()


def _recorded(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_serve_prints_each_event_as_one_json_line(serve: Serve, ipc_endpoint: str) -> None:
    server = serve(ipc_endpoint)
    _emit(ipc_endpoint, "orders.created", '{"id": 1, "name": "Zoë"}')
    _emit(ipc_endpoint, "ping")
    events = server.wait_for_events(2)
    assert events == [
        {"event": "orders.created", "payload": {"id": 1, "name": "Zoë"}},
        {"event": "ping", "payload": None},
    ]
    assert all(line.endswith(b"}\n") and line.count(b"\n") == 1 for line in server.stdout)
    assert server.stop() == 0
    assert "Traceback" not in server.stderr_text


def test_serve_several_endpoints_share_one_socket(
    serve: Serve, ipc_endpoint: str, tcp_endpoint: str
) -> None:
    server = serve(ipc_endpoint, tcp_endpoint)
    _emit(ipc_endpoint, "via.ipc", "1")
    _emit(tcp_endpoint, "via.tcp", "2")
    events = server.wait_for_events(2)
    assert sorted(str(e["event"]) for e in events) == ["via.ipc", "via.tcp"]
    assert f"receiving on {ipc_endpoint}, {tcp_endpoint} (pull, bound)" in server.stderr_text


def test_serve_connect_mode_receives_from_a_binding_emitter(
    serve: Serve, start_cli: Callable[..., CliProcess], ipc_endpoint: str
) -> None:
    server = serve("--connect", ipc_endpoint)
    result = run_cli("emit", "--bind", ipc_endpoint, "--timeout", "10", "bound.push", "[1, 2]")
    assert result.returncode == 0, result.stderr.decode()
    assert server.wait_for_events(1) == [{"event": "bound.push", "payload": [1, 2]}]


def test_serve_handler_gets_events_and_stdout_stays_empty(
    serve: Serve, ipc_endpoint: str, short_tmp: Path
) -> None:
    out = short_tmp / "handled.jsonl"
    server = serve(
        "--handler", "sample_handlers:record", ipc_endpoint, env=cli_env(ZEV_TEST_OUT=str(out))
    )
    _emit(ipc_endpoint, "orders.created", '{"id": 7}')
    wait_until(lambda: len(_recorded(out)) >= 1, "the handler to record the event")
    assert _recorded(out) == [{"event": "orders.created", "payload": {"id": 7}}]
    assert server.stop() == 0
    assert server.stdout == []


def test_serve_pattern_limits_which_events_reach_the_handler(
    serve: Serve, ipc_endpoint: str, short_tmp: Path
) -> None:
    out = short_tmp / "handled.jsonl"
    server = serve(
        "--handler",
        "sample_handlers:record",
        "--pattern",
        "orders.*",
        "--poll-timeout",
        "0.05",  # idle events fire often: they must not reach the handler
        ipc_endpoint,
        env=cli_env(ZEV_TEST_OUT=str(out)),
    )
    lines = b'{"event": "users.created"}\n{"event": "orders.paid", "payload": 3}\n'
    _emit(ipc_endpoint, "-", input=lines)
    _emit(ipc_endpoint, "orders.last")
    wait_until(lambda: len(_recorded(out)) >= 2, "two orders events")
    assert [e["event"] for e in _recorded(out)] == ["orders.paid", "orders.last"]
    assert server.stop() == 0


def test_serve_pattern_filters_printed_events(serve: Serve, ipc_endpoint: str) -> None:
    server = serve("--pattern", "*.created", ipc_endpoint)
    _emit(ipc_endpoint, "-", input=b'{"event": "orders.paid"}\n{"event": "orders.created"}\n')
    assert server.wait_for_events(1) == [{"event": "orders.created", "payload": None}]
    _emit(ipc_endpoint, "users.created")
    events = server.wait_for_events(2)
    assert [e["event"] for e in events] == ["orders.created", "users.created"]


def test_failing_handler_is_reported_to_a_confirmed_sender_and_serve_keeps_running(
    serve: Serve, ipc_endpoint: str, short_tmp: Path
) -> None:
    out = short_tmp / "handled.jsonl"
    server = serve(
        "--confirmed",
        "--handler",
        "sample_handlers:record_unless_boom",
        ipc_endpoint,
        env=cli_env(ZEV_TEST_OUT=str(out)),
    )
    failed = run_cli("emit", "-e", ipc_endpoint, "--confirmed", "boom")
    assert failed.returncode == 1
    assert failed.stderr.decode().splitlines() == [
        f"Error: 'boom' was sent to {ipc_endpoint} and delivered; "
        "the remote handler failed: ValueError: boom was fired"
    ]
    _emit(ipc_endpoint, "--confirmed", "after.boom")
    wait_until(lambda: _recorded(out), "the event after the failure")
    assert _recorded(out) == [{"event": "after.boom", "payload": None}]
    assert server.stop() == 0
    assert "boom was fired" in server.stderr_text
    assert "Traceback" not in server.stderr_text


def test_serve_subscribe_receives_only_matching_prefixes_over_pub_sub(
    serve: Serve, tcp_endpoint: str
) -> None:
    server = serve("--subscribe", "orders.", tcp_endpoint)
    # Slow joiner: a PUB drops what it sends before the subscription reaches it, so
    # re-send until the first event gets through.
    deadline = time.monotonic() + DEADLINE
    while not server.stdout:
        assert time.monotonic() < deadline, "no event got through the PUB/SUB pair"
        _emit(tcp_endpoint, "--socket-type", "pub", "--wait", "0.2", "orders.hello")
    lines = b'{"event": "users.created"}\n{"event": "orders.created", "payload": 2}\n'
    _emit(tcp_endpoint, "--socket-type", "pub", "-", input=lines)
    wait_until(lambda: any(e["event"] == "orders.created" for e in server.events()), "orders")
    assert {e["event"] for e in server.events()} == {"orders.hello", "orders.created"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_promptly_with_status_0_on_signal(
    serve: Serve, ipc_endpoint: str, signum: int
) -> None:
    """An idle serve exits 0 within 2 seconds of SIGTERM or SIGINT."""
    server = serve("--poll-timeout", "3600", ipc_endpoint)
    server.proc.send_signal(signum)
    wait_until(lambda: server.proc.poll() is not None, "serve to exit", timeout=2.0)
    assert server.stop(signum) == 0
    assert "Traceback" not in server.stderr_text
    assert "service stopped" in server.stderr_text


def test_serve_stopped_while_setting_up_exits_0(
    start_cli: Callable[..., CliProcess], ipc_endpoint: str, short_tmp: Path
) -> None:
    """SIGTERM before the service runs (here: while a handler imports) stops it cleanly."""
    out = short_tmp / "imported.txt"
    server = start_cli(
        "serve",
        "--handler",
        "slow_import_handlers:ignore",
        ipc_endpoint,
        env=cli_env(ZEV_TEST_OUT=str(out)),
    )
    wait_until(out.exists, "the handler module to start importing")
    assert server.stop(signal.SIGTERM) == 0
    assert "Traceback" not in server.stderr_text
    assert "received SIGTERM, stopping" in server.stderr_text


def test_serve_logs_where_it_receives_under_its_own_name(serve: Serve, ipc_endpoint: str) -> None:
    server = serve(ipc_endpoint)
    expected = f"INFO zevents.cli.serve: receiving on {ipc_endpoint} (pull, bound) -> stdout"
    assert expected in server.stderr_text
    assert server.stop() == 0


def test_serve_exits_quietly_when_stdout_is_closed(ipc_endpoint: str, short_tmp: Path) -> None:
    errors = short_tmp / "stderr.txt"
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zevents", "serve", ipc_endpoint],
            stdout=subprocess.PIPE,
            stderr=err,
            env=cli_env(),
        )
    try:
        wait_until(lambda: b"receiving on" in errors.read_bytes(), "serve to start")
        _emit(ipc_endpoint, "first")
        assert proc.stdout is not None
        assert orjson.loads(proc.stdout.readline()) == {"event": "first", "payload": None}
        proc.stdout.close()  # as `| head -1` does
        deadline = time.monotonic() + DEADLINE
        while proc.poll() is None:
            assert time.monotonic() < deadline, "serve kept running with stdout closed"
            run_cli("emit", "-e", ipc_endpoint, "--timeout", "0.5", "more")
        assert proc.wait() == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = errors.read_text()
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr


def test_serve_takes_options_from_a_config_connection(
    serve: Serve, short_tmp: Path, ipc_endpoint: str
) -> None:
    config = short_tmp / "zevents.toml"
    config.write_text(
        f'[connections.service]\nbind = "{ipc_endpoint}"\nsocket_type = "pull"\n\n'
        f'[connections.sender]\nconnect = "{ipc_endpoint}"\nsndtimeo = 5000\n'
    )
    server = serve("--config", str(config), "--connection", "service")
    _emit_result = run_cli(
        "emit", "--config", str(config), "--connection", "sender", "from.config", '"ok"'
    )
    assert _emit_result.returncode == 0, _emit_result.stderr.decode()
    assert server.wait_for_events(1) == [{"event": "from.config", "payload": "ok"}]


def test_serve_finds_zevents_toml_in_the_working_directory(
    serve: Serve, short_tmp: Path, ipc_endpoint: str
) -> None:
    (short_tmp / "zevents.toml").write_text(f'[connections.local]\nbind = "{ipc_endpoint}"\n')
    server = serve("--connection", "local", cwd=short_tmp)
    _emit(ipc_endpoint, "found.it")
    assert server.wait_for_events(1) == [{"event": "found.it", "payload": None}]


def test_serve_logs_the_port_it_bound_for_a_wildcard_endpoint(serve: Serve) -> None:
    server = serve("tcp://127.0.0.1:*")
    found = re.search(r"receiving on (tcp://127\.0\.0\.1:\d+) \(pull, bound\)", server.stderr_text)
    assert found is not None, server.stderr_text
    _emit(found.group(1), "wildcard.port")
    assert server.wait_for_events(1) == [{"event": "wildcard.port", "payload": None}]


@pytest.mark.parametrize("quiet", [["-q", "serve"], ["serve", "-q"]], ids=["group-q", "serve-q"])
def test_quiet_serve_writes_only_event_lines(
    start_cli: Callable[..., CliProcess], ipc_endpoint: str, quiet: list[str]
) -> None:
    server = start_cli(*quiet, "--poll-timeout", "0.05", ipc_endpoint)
    _emit(ipc_endpoint, "--timeout", "10", "quiet.please")
    assert server.wait_for_events(1) == [{"event": "quiet.please", "payload": None}]
    assert server.stop() == 0
    assert server.stderr == []


def test_serve_verbose_option_logs_debug_lines(serve: Serve, ipc_endpoint: str) -> None:
    server = serve("-v", ipc_endpoint)
    wait_until(lambda: "DEBUG zevents._sockets: opened receive pull" in server.stderr_text, "debug")
    assert server.stop() == 0
