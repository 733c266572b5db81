"""``zevents list`` on a sample application, in a real process."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.cli.conftest import run_cli
from zevents import Bus, EventListener
from zevents.eventbus import Subscription

SAMPLE_APP = """\
import zevents
from zevents import Bus, EventListener

bus = Bus("shop")
bus.listen("orders.*", EventListener(connect="tcp://127.0.0.1:5555"))
bus.listen("orders.created", EventListener(bind="ipc://audit.sock", socket_type="pub"))


@bus.on("users.joined")
def welcome(event, payload):
    pass


async def index(event, payload):
    pass


bus.listen("orders.*", index)


def audit(sender, **kwargs):
    pass


bus.signal("orders.paid").connect(audit)  # plain blinker
zevents.bus.listen("billing.*", welcome)
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "shop_events.py").write_text(SAMPLE_APP)
    return tmp_path


def _listed(app_dir: Path, *args: str) -> str:
    result = run_cli("list", *args, cwd=app_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    return result.stdout.decode()


def test_json_lines_name_each_receiver_and_where_listeners_forward(app_dir: Path) -> None:
    rows = [orjson.loads(line) for line in _listed(app_dir, "--app", "shop_events").splitlines()]
    assert [(row["bus"], row["pattern"], row["receiver"]) for row in rows] == [
        ("shop", "orders.*", "EventListener"),
        ("shop", "orders.created", "EventListener"),
        ("shop", "users.joined", "shop_events.welcome"),
        ("shop", "orders.*", "shop_events.index"),
        ("shop", "orders.paid", "shop_events.audit"),
        ("default", "billing.*", "shop_events.welcome"),
    ]
    assert rows[0]["forwards_to"] == {
        "socket_type": "push",
        "connect": ["tcp://127.0.0.1:5555"],
        "bind": [],
    }
    assert rows[1]["forwards_to"] == {
        "socket_type": "pub",
        "connect": [],
        "bind": ["ipc://audit.sock"],
    }
    assert [row["async"] for row in rows] == [False, False, False, True, False, False]
    assert [row["blinker"] for row in rows] == [False, False, False, False, True, False]
    assert not (app_dir / "audit.sock").exists()  # listing opens no socket


def test_the_table_of_one_bus(app_dir: Path) -> None:
    table = _listed(app_dir, "--app", "shop_events:bus", "--table")
    assert table.splitlines() == [
        "pattern          receiver                    forwards to",
        "─" * 75,
        "orders.*         EventListener (push)        tcp://127.0.0.1:5555 (connect)",
        "orders.created   EventListener (pub)         ipc://audit.sock (bind)",
        "users.joined     shop_events.welcome         -",
        "orders.*         shop_events.index (async)   -",
        "orders.paid      shop_events.audit           -",
    ]


def test_compact_prints_each_pattern_once(app_dir: Path) -> None:
    assert _listed(app_dir, "--app", "shop_events", "--compact").splitlines() == [
        "orders.*",
        "orders.created",
        "users.joined",
        "orders.paid",
        "billing.*",
    ]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (
            "no_such_module",
            "Error: app 'no_such_module': cannot import 'no_such_module': "
            "No module named 'no_such_module'",
        ),
        (
            "shop_events:welcome",
            "Error: Invalid value for '--app': 'shop_events:welcome' is "
            "function, not a Bus or a module",
        ),
        ("shop_events:nothing", "Error: app 'shop_events:nothing': 'shop_events' has no 'nothing'"),
    ],
)
def test_an_app_that_is_not_a_bus_is_a_usage_error(app_dir: Path, spec: str, error: str) -> None:
    result = run_cli("list", "--app", spec, cwd=app_dir)
    assert result.returncode == 2
    assert result.stderr.decode() == error + "\n"


def test_subscriptions_lists_receivers_in_registration_order() -> None:
    bus = Bus()

    def first(event: str, payload: object) -> None: ...

    listener = EventListener(connect="ipc:///tmp/never-opened.sock")
    bus.listen("a.*", first)
    bus.listen("b", listener)
    assert bus.subscriptions() == [Subscription("a.*", first), Subscription("b", listener)]
    bus.forget("a.*")
    assert bus.subscriptions() == [Subscription("b", listener)]
