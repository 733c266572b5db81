"""Who may connect: CURVE between a real ``zevents serve`` and real senders, refusals
logged with the peer's address, ``max_message_size``, ipc file permissions and
``zevents keys generate``."""

from __future__ import annotations

import logging
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq
import zmq.auth

from tests.cli.conftest import CliProcess, run_cli, wait_until
from zevents import EventListener
from zevents._trust import _UNFINISHED, ConnectionLog, authenticator_for, stop_authenticator
from zevents.config import ListenerOptions
from zevents.errors import ConfigError, DeliveryTimeout
from zevents.receiving import ReceivingSocket

Serve = Callable[..., CliProcess]

#: A refusal line: the bound endpoint, the peer with its port (for a connection closed
#: before its address could be read: the host the key check saw, or, refused before
#: the key check, that it was gone), and the reason.
REFUSED = re.compile(
    r"WARNING zevents\.connections: refused a connection on (\S+) from "
    r"(tcp://127\.0\.0\.1:\d+|tcp://127\.0\.0\.1 \(gone before its port was read\)"
    r"|a peer gone already): (.+)"
)
#: Why a plain client is refused: whichever side sees the mismatch first says so.
MISMATCH = "its security mechanism differs (CURVE on one side only?)"
UNFINISHED = "its handshake did not finish: a socket type that cannot talk to this one"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """A server pair, an allowed client's pair (its public key in ``allowed/``) and a
    stranger's pair, written by ``zevents keys generate``."""
    for name, folder in (("server", "keys"), ("client", "keys"), ("stranger", "keys")):
        made = run_cli("keys", "generate", name, "--dir", str(tmp_path / folder))
        assert made.returncode == 0, made.stderr
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "client.key").write_bytes((tmp_path / "keys" / "client.key").read_bytes())
    return tmp_path


def _serve_curve(serve: Serve, keys: Path, endpoint: str, *extra: str) -> CliProcess:
    return serve(
        "--curve-secret-key",
        str(keys / "keys" / "server.key_secret"),
        "--curve-allow",
        str(keys / "allowed"),
        *extra,
        endpoint,
    )


def _client(keys: Path, endpoint: str, name: str | None, **options: object) -> EventListener:
    settings: dict[str, object] = {
        "connect": endpoint,
        "sndtimeo": 1500,
        "linger": 0,
        "curve_server_key": str(keys / "keys" / "server.key"),
        **options,
    }
    if name is not None:
        settings["curve_secret_key"] = str(keys / "keys" / f"{name}.key_secret")
    return EventListener(settings)


def _refusals(server: CliProcess) -> list[tuple[str, str, str]]:
    return [(m[1], m[2], m[3]) for m in REFUSED.finditer(server.stderr_text)]


def test_keys_generate_writes_a_pair_and_never_overwrites_one(tmp_path: Path) -> None:
    made = run_cli("keys", "generate", "api", "--dir", str(tmp_path / "k"))
    assert made.returncode == 0, made.stderr
    public, secret = tmp_path / "k" / "api.key", tmp_path / "k" / "api.key_secret"
    assert made.stdout.decode().splitlines() == [f"public key: {public}", f"secret key: {secret}"]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    public_key, secret_key = zmq.auth.load_certificate(secret)
    assert secret_key is not None
    assert len(public_key) == 40
    before = secret.read_bytes()
    again = run_cli("keys", "generate", "api", "--dir", str(tmp_path / "k"))
    assert again.returncode == 2
    assert again.stderr.decode() == (
        f"Error: {public} already exists: remove it, or choose another name\n"
    )
    assert secret.read_bytes() == before


def test_an_allowed_client_delivers_plain_and_confirmed(
    serve: Serve, keys: Path, tcp_endpoint: str
) -> None:
    server = _serve_curve(serve, keys, tcp_endpoint, "--confirmed")
    client = _client(keys, tcp_endpoint, "client", confirmed=True, rcvtimeo=5000)
    try:
        client.send("orders.created", {"id": 1})  # returns once the service handled it
        client.send("orders.paid", {"id": 1})
    finally:
        client.close()
    assert server.wait_for_events(2) == [
        {"event": "orders.created", "payload": {"id": 1}},
        {"event": "orders.paid", "payload": {"id": 1}},
    ]
    assert _refusals(server) == []


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        ("stranger", "its key is not allowed (ZAP status 400)"),
        (None, "its key is not allowed (ZAP status 400)"),  # a fresh, unknown key pair
        ("plain", None),
    ],
)
def test_a_client_not_allowed_delivers_nothing_and_is_logged(
    serve: Serve, keys: Path, tcp_endpoint: str, who: str | None, reason: str | None
) -> None:
    server = _serve_curve(serve, keys, tcp_endpoint)
    if who == "plain":
        client = EventListener(connect=tcp_endpoint, sndtimeo=1500, linger=0)
    else:
        client = _client(keys, tcp_endpoint, who)
    try:
        with pytest.raises(DeliveryTimeout) as caught:
            client.send("orders.stolen", {"id": 1})
        assert caught.value.sent is False
        # open until then: on a loaded machine its first try may not have been refused yet
        wait_until(lambda: _refusals(server), "the refusal line")
    finally:
        client.close()
    endpoint, peer, why = _refusals(server)[0]
    assert endpoint == tcp_endpoint
    if reason is not None:  # refused by the key check: its host is always known
        assert peer.startswith("tcp://127.0.0.1")
        assert why == reason
    else:
        assert why == MISMATCH or why.startswith(UNFINISHED)
    # the service goes on: an allowed client still delivers
    allowed = _client(keys, tcp_endpoint, "client")
    allowed.send("orders.created", {"id": 2})
    allowed.close(linger=2000)
    assert server.wait_for_events(1) == [{"event": "orders.created", "payload": {"id": 2}}]
    assert server.stop() == 0


def test_a_key_refusal_closed_before_its_address_was_read_names_its_host(
    keys: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The race the test above can lose on a loaded machine, played in order: libzmq
    accepted a connection whose descriptor was closed (refused) before the monitor
    thread read its address; the log names the host the key check saw."""
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = context.socket(zmq.PULL)
    authenticator = authenticator_for(context, str(keys / "allowed"))
    log = ConnectionLog(sock, "tcp://127.0.0.1:1", authenticator)
    try:
        closed_fd = 65_000  # no descriptor: what a closed connection's number reads as
        authenticator.refused.append("10.1.2.3")  # as its ZAP reply does, before libzmq hears
        with caplog.at_level(logging.WARNING, logger="zevents.connections"):
            log.note(zmq.EVENT_ACCEPTED, closed_fd)
            log.note(zmq.EVENT_HANDSHAKE_FAILED_AUTH, 400)
            log.note(zmq.EVENT_DISCONNECTED, closed_fd)
            # refused before the key check (no ZAP verdict): nothing to name it by
            log.note(zmq.EVENT_ACCEPTED, closed_fd)
            log.note(zmq.EVENT_DISCONNECTED, closed_fd)
        assert [r.getMessage() for r in caplog.records] == [
            "refused a connection on tcp://127.0.0.1:1 from tcp://10.1.2.3 (gone before its "
            "port was read): its key is not allowed (ZAP status 400)",
            "refused a connection on tcp://127.0.0.1:1 from a peer gone already: " + _UNFINISHED,
        ]
        assert log.refused == 2
        assert not authenticator.refused
    finally:
        log.close()
        sock.close(linger=0)
        stop_authenticator(context)
        context.term()


def test_a_socket_type_that_cannot_talk_to_the_service_is_logged(
    serve: Serve, tcp_endpoint: str
) -> None:
    """libzmq drops a DEALER sending to a PULL without a word; the service says so."""
    server = serve(tcp_endpoint)
    dealer = EventListener(connect=tcp_endpoint, socket_type="dealer", sndtimeo=1000, linger=0)
    with pytest.raises(DeliveryTimeout):
        dealer.send("lost.silently", None)
    dealer.close()
    wait_until(lambda: _refusals(server), "the refusal line")
    endpoint, _, reason = _refusals(server)[0]
    assert endpoint == tcp_endpoint
    assert reason.startswith(UNFINISHED)
    assert server.events() == []


def test_an_oversized_message_drops_its_connection_and_nothing_else(
    serve: Serve, tcp_endpoint: str
) -> None:
    """max_message_size (16 MiB by default): libzmq closes the connection of a peer
    sending more instead of buffering it; the service logs it and goes on."""
    server = serve(tcp_endpoint)
    context = zmq.Context()
    try:
        push = context.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 5000)
        push.connect(tcp_endpoint)
        push.send_multipart([b"too.big", b"x" * (17 * 1024 * 1024)])
        wait_until(lambda: "closed (by the peer, or by libzmq" in server.stderr_text, "log")
        push.close()
    finally:
        context.destroy(linger=0)
    result = run_cli("emit", "-e", tcp_endpoint, "small.one", "1")
    assert result.returncode == 0, result.stderr
    assert server.wait_for_events(1) == [{"event": "small.one", "payload": 1}]
    closed = [line for line in server.stderr_text.splitlines() if "closed (by the peer" in line]
    assert re.search(
        rf"INFO zevents\.connections: connection on {tcp_endpoint} from tcp://", closed[0]
    )


def test_max_message_size_can_be_raised_or_lifted(tcp_endpoint: str) -> None:
    assert EventListener(bind=tcp_endpoint).options.max_message_size == 16 * 1024 * 1024
    assert EventListener(bind=tcp_endpoint, max_message_size=-1).options.max_message_size == -1
    with pytest.raises(ConfigError) as caught:
        EventListener(bind=tcp_endpoint, max_message_size=0)
    assert caught.value.option == "max_message_size"


@pytest.mark.parametrize(("given", "mode"), [(None, 0o600), (0o660, 0o660), ("640", 0o640)])
def test_ipc_socket_files_are_owner_only_unless_told(
    short_tmp: Path, given: object, mode: int
) -> None:
    path = short_tmp / "perm.sock"
    options: dict[str, object] = {"bind": f"ipc://{path}"}
    if given is not None:
        options["ipc_mode"] = given
    receiving = ReceivingSocket(ListenerOptions.build(options))
    try:
        receiving.socket  # noqa: B018 - binds
        assert stat.S_IMODE(path.stat().st_mode) == mode
    finally:
        receiving.close()


def test_confirmed_zeroevents_on_the_command_line(serve: Serve, ipc_endpoint: str) -> None:
    server = serve("--confirmed=zeroevents", ipc_endpoint)
    sent = run_cli("emit", "--confirmed=zeroevents", "-e", ipc_endpoint, "legacy.event", "[1]")
    assert sent.returncode == 0, sent.stderr
    assert server.wait_for_events(1) == [{"event": "legacy.event", "payload": [1]}]
    bad = run_cli("emit", "--confirmed=yes", "-e", ipc_endpoint, "x")
    assert bad.returncode == 2
    assert bad.stderr.decode() == (
        "Error: Invalid value for '--confirmed': 'yes' is not a confirmation form: give "
        "--confirmed alone, or --confirmed=zeroevents for PHP zeroevents peers\n"
    )
