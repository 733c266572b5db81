"""examples/fastapi_app.py under uvicorn in a child process, with real HTTP requests:
its handlers' events reach a zevents service in another process (a confirmed one's
outcome is in the response), its lifespan's async service receives events, and its
lifespan's async Redis worker runs the jobs a request queued."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_tcp_port
from tests.helpers import ROOT, ServiceProcess, child_env, wait_for
from zevents import EventListener
from zevents.redis import RedisQueue, RedisServer


@pytest.fixture
def orders_service(short_tmp: Path) -> Iterator[ServiceProcess]:
    """The zevents service the app sends orders to; its receivers fail on cancellations."""
    listen = {"bind": f"ipc://{short_tmp}/orders.sock", "confirmed": True}
    service = ServiceProcess(short_tmp, listen, fail="orders.cancelled")
    try:
        yield service.wait_ready()
    finally:
        service.stop()


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def _start_app(short_tmp: Path, port: int, redis_url: str) -> subprocess.Popen[str]:
    env = child_env()
    env["ZEVENTS_REDIS_URL"] = redis_url
    env["JOBS_QUEUE"] = "receipts"
    env["ORDERS_ENDPOINT"] = f"ipc://{short_tmp}/orders.sock"
    env["INBOX_ENDPOINT"] = f"ipc://{short_tmp}/inbox.sock"
    uvicorn = [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "examples")]
    server = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen(
        [*uvicorn, *server, "fastapi_app:app"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _is_up(client: httpx.Client, app: subprocess.Popen[str]) -> bool:
    if app.poll() is not None:
        raise AssertionError(f"the app exited early: {app.communicate()[1]}")
    try:
        return bool(client.get("/health").json() == {"ok": True})
    except httpx.TransportError:
        return False


def test_requests_fire_events_and_the_lifespan_service_receives(
    short_tmp: Path, orders_service: ServiceProcess, redis_url: str
) -> None:
    port = free_tcp_port()
    app = _start_app(short_tmp, port, redis_url)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_for(lambda: _is_up(client, app), 30, what="the app up")

            created = client.post("/orders", json={"id": 1, "total": 9.5})
            assert (created.status_code, created.json()) == (201, {"order": 1, "confirmed": True})
            # confirmed: the service's receivers ran before the response
            rows = orders_service.events("orders.created")
            assert [row["payload"] for row in rows] == [{"id": 1, "total": 9.5}]

            cancelled = client.delete("/orders/2")
            assert cancelled.status_code == 502
            assert "RuntimeError: receiver failed on orders.cancelled" in cancelled.json()["detail"]

            viewed = client.post("/orders/3/viewed")
            assert (viewed.status_code, viewed.json()) == (202, {"order": 3, "sent": True})
            assert orders_service.wait_events("orders.viewed")[0]["payload"] == {"id": 3}

            with EventListener(connect=f"ipc://{short_tmp}/inbox.sock", confirmed=True) as sender:
                sender.send("stock.changed", {"sku": "A", "left": 4})
            assert client.get("/inbox").json() == [
                {"event": "stock.changed", "payload": {"sku": "A", "left": 4}}
            ]

            # a job stored in Redis, run by the lifespan's async worker
            queued = [client.post(f"/orders/{n}/receipt") for n in (5, 6, 7)]
            assert [r.status_code for r in queued] == [202, 202, 202]
            assert all(r.json()["queued"] for r in queued)
            wait_for(lambda: sorted(client.get("/receipts").json()) == [5, 6, 7], 15, what="jobs")
        app.send_signal(signal.SIGINT)
        _, err = app.communicate(timeout=20)
        assert app.returncode == 0, err
        assert not (short_tmp / "inbox.sock").exists()  # the lifespan closed the service
        with RedisQueue("receipts", redis_url) as queue:
            stats = queue.stats()
        assert (stats["ready"], stats["processing"], stats["failed"]) == ({0: 0}, 0, 0)
    finally:
        if app.poll() is None:
            app.kill()
            app.communicate()
