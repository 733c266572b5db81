"""``zevents emit`` in a real process: delivery, failures, stdin lines, counts."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from tests.cli.conftest import DEADLINE, CliProcess, cli_env, run_cli, wait_until
from zevents.cli.emit import BadLine, Line, read_lines

Serve = Callable[..., CliProcess]


def serve_handling(serve: Serve, endpoint: str, handler: str, tmp: Path) -> Path:
    """``zevents serve --confirmed --handler sample_handlers:HANDLER ENDPOINT``; the file
    its handler writes what it handled to."""
    out = tmp / "handled.jsonl"
    serve(
        "--confirmed",
        "--handler",
        f"sample_handlers:{handler}",
        endpoint,
        env=cli_env(ZEV_TEST_OUT=str(out)),
    )
    return out


def test_confirmed_round_trip_exits_0(serve: Serve, ipc_endpoint: str) -> None:
    server = serve("--confirmed", ipc_endpoint)
    result = run_cli("emit", "-e", ipc_endpoint, "--confirmed", "orders.created", '{"id": 1}')
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b""
    assert result.stderr == b""
    assert server.wait_for_events(1) == [{"event": "orders.created", "payload": {"id": 1}}]


def test_confirmed_to_a_dead_endpoint_exits_1_naming_the_endpoint(ipc_endpoint: str) -> None:
    result = run_cli("emit", "-e", ipc_endpoint, "--confirmed", "--timeout", "0.3", "lost")
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: could not deliver 'lost' to {ipc_endpoint}: ")
    assert "300 ms" in lines[0]


def test_confirmed_send_nobody_took_asks_whether_the_service_is_confirmed(
    serve: Serve, ipc_endpoint: str
) -> None:
    """A confirmed DEALER finds no peer in a plain PULL service: the error says why."""
    serve(ipc_endpoint)
    result = run_cli("emit", "-e", ipc_endpoint, "--confirmed", "--timeout", "0.3", "lost")
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"Error: could not deliver 'lost' to {ipc_endpoint}: no peer took the event within "
        "sndtimeo=300 ms (DeliveryTimeout); is the service running with --confirmed?"
    ]


def test_confirmation_that_never_comes_names_the_wait_without_the_hint(
    serve: Serve, ipc_endpoint: str, short_tmp: Path
) -> None:
    """Sent, but the handler outlasts --timeout: not confirmed, and not a pairing problem."""
    serve_handling(serve, ipc_endpoint, "record_slowly", short_tmp)
    result = run_cli("emit", "-e", ipc_endpoint, "--confirmed", "--timeout", "0.3", "slow")
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"Error: could not deliver 'slow' to {ipc_endpoint}: no confirmation of 'slow' "
        "within 300 ms (DeliveryTimeout)"
    ]


@pytest.mark.parametrize("mode", ["-e", "--connect", "--bind"])
def test_push_with_no_peer_exits_1_naming_the_endpoint(tcp_endpoint: str, mode: str) -> None:
    result = run_cli("emit", mode, tcp_endpoint, "--timeout", "0.3", "lost")
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"Error: could not deliver 'lost' to {tcp_endpoint}: "
        "no peer took the event within sndtimeo=300 ms (DeliveryTimeout)"
    ]


def test_stdin_lines_mix_payloads_and_events_and_bad_lines_are_skipped(
    serve: Serve, ipc_endpoint: str
) -> None:
    server = serve("--confirmed", ipc_endpoint)
    lines = (
        b'{"id": 1}\n'
        b"\n"
        b'{"event": "orders.paid", "payload": {"id": 1}}\n'
        b"{not json}\n"
        b'{"event": "", "payload": 1}\n'
        b'"just a string"\n'
        b'{"event": "orders.shipped"}\n'
    )
    result = run_cli("emit", "-e", ipc_endpoint, "--confirmed", "orders.created", "-", input=lines)
    assert result.returncode == 1
    stderr = result.stderr.decode().splitlines()
    assert stderr[0].startswith("zevents emit: line 4: not JSON")
    assert stderr[0].endswith("; skipped")
    assert stderr[1] == "zevents emit: line 5: the event name must be a non-empty string; skipped"
    assert stderr[2].startswith(f"zevents emit: sent 4 events to {ipc_endpoint} in ")
    assert stderr[2].endswith("; 2 bad lines skipped")
    assert stderr[3] == "Error: 2 bad lines skipped (see above); the rest was sent"
    assert server.wait_for_events(4) == [
        {"event": "orders.created", "payload": {"id": 1}},
        {"event": "orders.paid", "payload": {"id": 1}},
        {"event": "orders.created", "payload": "just a string"},
        {"event": "orders.shipped", "payload": None},
    ]


def test_only_bad_lines_say_no_event_was_sent(serve: Serve, ipc_endpoint: str) -> None:
    serve("--confirmed", ipc_endpoint)
    lines = b'{not json}\n{"event": ""}\n'
    result = run_cli("emit", "-e", ipc_endpoint, "--confirmed", "-", input=lines)
    assert result.returncode == 1
    stderr = result.stderr.decode().splitlines()
    assert stderr[2].startswith(f"zevents emit: sent 0 events to {ipc_endpoint} in ")
    assert stderr[3] == "Error: 2 bad lines skipped (see above); no event was sent"
    assert len(stderr) == 4


def test_remote_handler_failure_on_a_line_says_delivered_and_resumes_after_it(
    serve: Serve, ipc_endpoint: str, short_tmp: Path
) -> None:
    """Delivered, so a resend would run the handler again: resume at the next line."""
    serve_handling(serve, ipc_endpoint, "record_unless_boom", short_tmp)
    lines = b'{"event": "a"}\n{"event": "boom"}\n{"event": "c"}\n'
    args = ["-q", "emit", "-e", ipc_endpoint, "--confirmed", "--window", "1", "-"]
    result = run_cli(*args, input=lines)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"Error: 'boom' (line 2) was sent to {ipc_endpoint} and delivered; the remote "
        "handler failed: ValueError: boom was fired; stopped there (resume with: tail -n +3; "
        "or tail -n +2 to send it again, e.g. to a bridge that could not store it)"
    ]


SUMMARY = re.compile(r"zevents emit: sent ([\d,]+) events to (\S+) in [\d.]+ s \([\d,]+/s\); (.+)")


def test_a_confirmed_run_from_stdin_keeps_a_window_in_flight(
    serve: Serve, ipc_endpoint: str, short_tmp: Path
) -> None:
    out = serve_handling(serve, ipc_endpoint, "record", short_tmp)
    lines = b"".join(b'{"event": "n", "payload": %d}\n' % n for n in range(3000))
    result = run_cli("emit", "-e", ipc_endpoint, "--confirmed", "-", input=lines)
    assert result.returncode == 0, result.stderr
    found = SUMMARY.fullmatch(result.stderr.decode().strip())
    assert found is not None, result.stderr
    assert found.groups() == ("3,000", ipc_endpoint, "3,000 confirmed")
    # confirmed means handled: every event is in the handler's file when emit returns
    handled = [orjson.loads(line)["payload"] for line in out.read_bytes().splitlines()]
    assert handled == list(range(3000))


def test_a_windowed_run_counts_what_was_not_confirmed_and_stops_sending(
    serve: Serve, ipc_endpoint: str, short_tmp: Path
) -> None:
    out = serve_handling(serve, ipc_endpoint, "record_unless_boom", short_tmp)
    events = [b'{"event": "boom"}' if n == 10 else b'{"event": "a"}' for n in range(50_000)]
    result = run_cli(
        "emit",
        "-e",
        ipc_endpoint,
        "--confirmed",
        "--window",
        "100",
        "-",
        input=b"\n".join(events) + b"\n",
    )
    assert result.returncode == 1
    stderr = result.stderr.decode().splitlines()
    summary = next(SUMMARY.fullmatch(line) for line in stderr if SUMMARY.fullmatch(line))
    assert summary is not None
    sent = int(summary[1].replace(",", ""))
    assert summary[3] == f"{sent - 1:,} confirmed, 1 not"
    assert sent < len(events)  # it stopped sending once the failure was known
    error = stderr[-1]
    assert error.startswith("Error: 1 event not confirmed (see the warnings above); ")
    resume = re.search(r"sending stopped at line (\d+) \(the rest: tail -n \+(\d+)\)", error)
    assert resume is not None
    assert resume[1] == resume[2] == str(sent + 1)
    handled = out.read_bytes().splitlines()
    assert len(handled) == sent - 1  # every confirmed event was handled, nothing more


def test_window_needs_confirmations(ipc_endpoint: str) -> None:
    result = run_cli("emit", "-e", ipc_endpoint, "--window", "10", "x")
    assert result.returncode == 2
    assert (
        result.stderr.decode() == "Error: --window N needs --confirmed (it counts confirmations)\n"
    )


def test_event_dash_replays_serve_output_and_rejects_bare_payloads(
    serve: Serve, ipc_endpoint: str
) -> None:
    server = serve("--confirmed", ipc_endpoint)
    lines = b'{"event":"a","payload":1}\n[1, 2]\n{"event":"b","payload":{"x":null}}\n'
    result = run_cli("emit", "-e", ipc_endpoint, "--confirmed", "-", input=lines)
    assert result.returncode == 1
    assert "line 2: not {" in result.stderr.decode()
    assert server.wait_for_events(2) == [
        {"event": "a", "payload": 1},
        {"event": "b", "payload": {"x": None}},
    ]


def test_stdin_delivery_failure_stops_and_names_the_line(ipc_endpoint: str) -> None:
    lines = b'{"event": "a"}\n{"event": "b"}\n'
    result = run_cli("emit", "-e", ipc_endpoint, "--timeout", "0.2", "-", input=lines)
    assert result.returncode == 1
    last = result.stderr.decode().splitlines()[-1]
    assert last.startswith(f"Error: could not deliver 'a' (line 1) to {ipc_endpoint}: ")
    assert last.endswith("stopped there (resume with: tail -n +1)")


def test_count_sends_that_many_copies_and_prints_a_summary(serve: Serve, tcp_endpoint: str) -> None:
    server = serve(tcp_endpoint)
    result = run_cli("emit", "-e", tcp_endpoint, "--count", "50", "smoke", '{"n": 1}')
    assert result.returncode == 0
    summary = result.stderr.decode().splitlines()
    assert len(summary) == 1
    assert summary[0].startswith(f"zevents emit: sent 50 events to {tcp_endpoint} in ")
    events = server.wait_for_events(50)
    assert events == [{"event": "smoke", "payload": {"n": 1}}] * 50


@pytest.mark.parametrize(
    "args",
    [["-q", "emit"], ["emit", "-q"], ["emit", "--quiet"]],
    ids=["group-q", "emit-q", "emit-quiet"],
)
def test_quiet_count_prints_nothing(serve: Serve, tcp_endpoint: str, args: list[str]) -> None:
    """-q works before and after the command name alike (docs/cli.md shows emit -q)."""
    server = serve(tcp_endpoint)
    result = run_cli(*args, "-e", tcp_endpoint, "--count", "3", "smoke")
    assert result.returncode == 0
    assert result.stderr == b""
    assert len(server.wait_for_events(3)) == 3


def test_emit_verbose_logs_debug_lines(tcp_endpoint: str) -> None:
    result = run_cli("emit", "-v", "-e", tcp_endpoint, "--timeout", "0.05", "nobody.listens")
    assert result.returncode == 1
    assert "DEBUG zevents._sockets: opened send push socket" in result.stderr.decode()


def test_emit_interrupted_by_sigint_exits_130(tcp_endpoint: str) -> None:
    port = int(tcp_endpoint.rsplit(":", 1)[1])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zevents",
            "emit",
            "--bind",
            tcp_endpoint,
            "--timeout",
            "60",
            "x",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    try:

        def is_bound() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(is_bound, "emit to bind")
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert "Traceback" not in err.decode()
    assert err.decode().strip().endswith("Interrupted.")


def test_read_lines_numbers_lines_and_skips_blank_ones() -> None:
    stream = [b'{"event": "a"}\n', b"  \n", b"oops\n", b"3\n"]
    items = list(read_lines(stream, "dflt"))
    assert items[0] == Line(1, "a", None)
    assert isinstance(items[1], BadLine)
    assert items[1].number == 3
    assert items[2] == Line(4, "dflt", 3)
    assert len(items) == 3


def test_object_with_other_keys_is_a_payload_not_an_event() -> None:
    stream = [b'{"event": "a", "extra": 1}\n']
    assert list(read_lines(stream, "dflt")) == [Line(1, "dflt", {"event": "a", "extra": 1})]
