"""Listener options and the config-file loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from zevents import ConfigError, EventListener, ListenerOptions, load_connection
from zevents.config import DEFAULT_LINGER, validate_endpoint


def test_defaults() -> None:
    options = ListenerOptions.build()
    assert options.linger == DEFAULT_LINGER == 2000
    assert (options.sndtimeo, options.rcvtimeo) == (2000, 2000)
    assert options.socket_type is None
    assert options.sending_type() == "push"
    assert options.confirmed is False
    assert options.threads == 1
    assert options.persistent is False


def test_overrides_win_over_mapping() -> None:
    options = ListenerOptions.build({"connect": "tcp://127.0.0.1:5555", "linger": 5}, linger=9)
    assert options.connect == ("tcp://127.0.0.1:5555",)
    assert options.linger == 9


def test_socket_type_by_role() -> None:
    assert ListenerOptions.build(confirmed=True).sending_type() == "dealer"
    assert ListenerOptions.build(bind="ipc:///tmp/x").receiving_type() == "pull"
    assert ListenerOptions.build(bind="ipc:///tmp/x", confirmed=True).receiving_type() == "router"
    assert ListenerOptions.build(socket_type="SUB").receiving_type() == "sub"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"socket_type": "bogus"}, "unknown socket_type 'bogus'"),
        ({"connect": "localhost:5555"}, "not a ZeroMQ endpoint"),
        ({"bind": ["tcp://127.0.0.1"]}, "has no port"),
        ({"bind": "ipc:///" + "x" * 200}, "limit is 107"),
        ({"linger": "soon"}, "whole milliseconds"),
        ({"sndtimeo": -5}, "-1 \\(infinite\\) or more"),
        ({"confirmed": "yes"}, "true or false"),
        ({"threads": 0}, "whole number"),
        ({"subscribe": 5}, "prefix"),
        ({"socket_options": [1]}, "mapping"),
        ({"colour": "blue"}, "unknown listener option"),
        ({"confirmed": True, "socket_type": "push"}, "confirmed delivery needs"),
        ({"socket_options": {"sndhwmm": 1}}, "unknown zmq socket option 'sndhwmm'"),
        ({"subscribe": "orders.", "socket_type": "pull"}, "is for SUB sockets"),
        ({"connect": "tcp://127.0.0.1:99999"}, "no valid port"),
        ({"connect": "tcp://127.0.0.1:0"}, "no valid port"),
    ],
)
def test_invalid_options_raise_config_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ListenerOptions.build(options)


def test_socket_option_names_are_resolved_to_numbers() -> None:
    import zmq

    options = ListenerOptions.build(socket_options={"sndhwm": 5, "TCP_KEEPALIVE": 1, 24: 7})
    assert dict(options.socket_options) == {zmq.SNDHWM: 5, zmq.TCP_KEEPALIVE: 1, 24: 7}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0, -1, 0.0001, "1", True])
def test_check_seconds_rejects_non_finite_and_too_small(value: object) -> None:
    from zevents.config import check_seconds

    with pytest.raises(ConfigError, match="poll_timeout"):
        check_seconds(value, "poll_timeout")


def test_validate_endpoint_accepts_abstract_ipc_and_inproc() -> None:
    assert validate_endpoint("ipc://@abstract-name") == "ipc://@abstract-name"
    assert validate_endpoint("inproc://x") == "inproc://x"
    assert validate_endpoint("tcp://127.0.0.1:*") == "tcp://127.0.0.1:*"
    assert validate_endpoint("tcp://[::1]:5555") == "tcp://[::1]:5555"


def test_connection_from_zevents_config_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "custom.toml"
    config.write_text('[connections.orders]\nconnect = "tcp://127.0.0.1:7001"\nlinger = 10\n')
    monkeypatch.setenv("ZEVENTS_CONFIG", str(config))
    assert load_connection("orders") == {"connect": "tcp://127.0.0.1:7001", "linger": 10}
    listener = EventListener("orders", sndtimeo=5)
    assert listener.options.connect == ("tcp://127.0.0.1:7001",)
    assert (listener.options.linger, listener.options.sndtimeo) == (10, 5)


def test_connection_from_zevents_toml_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZEVENTS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zevents.toml").write_text('[connections.a]\nbind = "ipc:///tmp/a.sock"\n')
    assert load_connection("a") == {"bind": "ipc:///tmp/a.sock"}


def test_connection_from_pyproject_tool_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZEVENTS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.zevents.connections.b]\nsocket_type = "pub"\n'
    )
    assert load_connection("b") == {"socket_type": "pub"}


def test_unknown_connection_names_files_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZEVENTS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "zevents.toml").write_text("[connections.a]\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"unknown connection 'nope'.*zevents.toml.*pyproject"):
        load_connection("nope")


def test_unknown_connection_without_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZEVENTS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no config file found"):
        EventListener("nope")


def test_missing_config_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEVENTS_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml.*does not exist"):
        load_connection("x")


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[connections.x\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_connection("x", bad)
