"""Every example runs as its docstring says (as a subprocess, with a deadline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_tcp_port
from tests.helpers import ROOT, child_env

EXAMPLES = ROOT / "examples"


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_orders_service_and_publisher_in_two_processes(short_tmp: Path, transport: str) -> None:
    endpoint = (
        f"ipc://{short_tmp}/orders.sock"
        if transport == "ipc"
        else f"tcp://127.0.0.1:{free_tcp_port()}"
    )
    service = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "orders_service.py"), endpoint],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None
        assert service.stdout.readline().startswith("waiting for orders")
        publisher = run(str(EXAMPLES / "orders_publisher.py"), endpoint)
        assert publisher.returncode == 0, publisher.stderr
        assert publisher.stdout.strip() == "sent 5 events"
        out, err = service.communicate(timeout=20)
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
    assert service.returncode == 0, err
    assert out.splitlines() == [
        "orders.created: {'order': 1, 'total': 10.5}",
        "orders.created: {'order': 2, 'total': 21.0}",
        "orders.created: {'order': 3, 'total': 31.5}",
        "orders.item.added: {'order': 1, 'sku': 'T-SHIRT'}",
        "orders.closed: {'count': 3}",
        "service stopped",
    ]


def test_orders_publisher_without_service_exits_one(short_tmp: Path) -> None:
    result = run(str(EXAMPLES / "orders_publisher.py"), f"ipc://{short_tmp}/none.sock")
    assert result.returncode == 1
    assert "not delivered: DeliveryTimeout" in result.stderr


def test_pubsub_fanout_splits_by_prefix() -> None:
    result = run(str(EXAMPLES / "pubsub_fanout.py"))
    assert result.returncode == 0, result.stderr
    assert "orders-sub got ['orders.created', 'orders.paid']" in result.stdout
    assert "users-sub got ['users.joined', 'users.left']" in result.stdout


def test_confirmed_timeout_reports_then_delivers() -> None:
    result = run(str(EXAMPLES / "confirmed_timeout.py"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("receiver down: delivered=False after 0.")
    assert "DeliveryTimeout" in lines[0]
    assert "remote handled" in result.stdout
    assert lines[-1].startswith("receiver up: delivered and handled = True")


def test_two_sockets_idle_receives_on_both_and_stops_when_idle() -> None:
    result = run(str(EXAMPLES / "two_sockets_idle.py"))
    assert result.returncode == 0, result.stderr
    assert "confirmed: True" in result.stdout
    assert result.stdout.count("idle for") == 2
    assert result.stdout.strip().endswith("stopped after ['billing.invoiced', 'sensor.reading']")
