"""Every example runs as its docstring says (as a subprocess, with a deadline)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

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


def test_the_redis_cli_producer_enqueues_messages_a_zevents_worker_handles() -> None:
    """examples/foreign_producer.sh writes a list and a stream message as docs/redis.md
    says; a Worker takes both, with their enqueue time."""
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli is not installed: the shell producer needs it")
    pytest.importorskip("redis", reason="the Redis parts need the redis extra")
    from zevents import Bus
    from zevents.redis import RedisQueue, RedisServer, Worker, current

    with RedisServer() as server:
        produced = subprocess.run(
            ["sh", str(EXAMPLES / "foreign_producer.sh"), "sh-orders", "sh-stream"],
            cwd=ROOT,
            env={**child_env(), "ZEVENTS_REDIS_URL": server.url},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert produced.returncode == 0, produced.stderr
        assert produced.stdout.startswith("enqueued sh-")
        seen: list[tuple[str, Any, bool]] = []
        bus = Bus()
        bus.listen("orders.*", lambda e, p: seen.append((e, p, current().enqueued_at is not None)))
        with (
            RedisQueue("sh-orders", server.url) as orders,
            RedisQueue("sh-stream", server.url, driver="stream") as stream,
        ):
            worker = Worker([orders, stream], bus, max_messages=2)
            thread = threading.Thread(target=worker.run, daemon=True)
            thread.start()
            thread.join(20)
            if thread.is_alive():
                worker.stop()
                thread.join(10)
            assert orders.stats()["processing"] == 0
    assert sorted(seen, key=lambda s: s[1]["id"]) == [
        ("orders.created", {"id": 101, "by": "redis-cli"}, True),
        ("orders.created", {"id": 102, "by": "redis-cli"}, True),
    ]
