"""Redis killed and restarted under a confirmed bridge run, and under the embedded Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import Figures, Log, Workers, wait_exists
from tests.helpers import child_env
from zevents import Bus, DeliveryError, EventListener
from zevents.events import PUSH_ERROR
from zevents.redis import RedisQueue, RedisServer
from zevents.redis.embedded import EmbeddedRedis

pytestmark = pytest.mark.faults

BRIDGE_SCRIPT = Path(__file__).resolve().parents[1] / "redis" / "bridge_script.py"
EVENTS = 10_000
RESTARTS = 2


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    """A redis-server with an append-only file synced on every write."""
    with RedisServer(persistent=True) as server:
        yield server


@pytest.fixture
def embedded_home(short_tmp: Path) -> Iterator[Path]:
    home = short_tmp / "data"
    yield home
    EmbeddedRedis(home).shutdown()


@pytest.mark.timeout(150)
def test_every_event_the_bridge_confirmed_survives_redis_restarts_and_is_handled(
    persistent_redis: RedisServer,
    workers: Callable[..., Workers],
    short_tmp: Path,
    figures: Figures,
) -> None:
    """Redis (append-only) killed with SIGKILL and restarted twice during a run of
    10,000 confirmed events through ``Bridge``: every confirmed one is handled."""
    server, endpoint, ready = persistent_redis, f"ipc://{short_tmp}/bridge.sock", short_tmp / "up"
    bridge_log = short_tmp / "bridge.err"  # a file: a pipe nobody reads could stop it
    with open(bridge_log, "wb") as stderr:
        bridge = subprocess.Popen(
            [
                sys.executable,
                str(BRIDGE_SCRIPT),
                server.url,
                "orders",
                endpoint,
                str(ready),
                "--confirmed",
            ],
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    log = Log(short_tmp / "handled.log")
    group = workers(server.url, "orders", "list", log.path)
    group.start()
    bus = Bus("sender")
    reported: list[int] = []
    bus.listen(PUSH_ERROR, lambda event, report: reported.append(report["payload"]["i"]))
    listener = EventListener(
        connect=endpoint, confirmed=True, window=200, sndtimeo=1000, rcvtimeo=3000, bus=bus
    )
    restarts: list[threading.Thread] = []
    try:
        wait_exists(ready)
        for i in range(EVENTS):
            if i and i % (EVENTS // (RESTARTS + 1)) == 0 and len(restarts) < RESTARTS:
                # on a thread: the sender goes on sending while Redis is down
                restarts.append(threading.Thread(target=server.restart, kwargs={"hard": True}))
                restarts[-1].start()
            listener("job.order", {"i": i})
        with contextlib.suppress(DeliveryError):  # each was reported with push.error too
            listener.flush()
        for thread in restarts:
            thread.join(30)
        confirmed = set(range(EVENTS)) - set(reported)
        with RedisQueue("orders", server.url) as queue:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (
                confirmed <= log.handled() and queue.stats()["processing"] == 0
            ):
                time.sleep(0.05)
            stats, failed = queue.stats(), queue.failed()
    finally:
        listener.close(linger=0)
        bridge.terminate()
        bridge.wait(15)
    handled = Counter(i for i, _, _ in log.read().done)
    lost = confirmed - set(handled)
    figures(
        f"Redis SIGKILL+restart x{len(restarts)} under the bridge: sent {EVENTS:,}, "
        f"confirmed {len(confirmed):,}, reported to the sender {len(reported):,} "
        f"(of which stored and handled {len(set(reported) & set(handled))}), handled "
        f"{len(handled):,} (+{sum(handled.values()) - len(handled)} again), lost {len(lost)}"
    )
    assert len(restarts) == RESTARTS
    assert len(reported) == len(set(reported)), "an event was reported twice"
    assert lost == set(), f"{group.errors()}\nbridge:\n{bridge_log.read_text()[-3000:]}"
    assert reported, "the restarts cost the sender nothing: they did not hit the run"
    assert sum(stats["ready"].values()) == 0
    assert stats["processing"] == 0
    assert failed == []
    assert bridge.returncode == 0


@pytest.mark.timeout(60)
def test_the_embedded_redis_killed_with_sigkill_keeps_every_acknowledged_send(
    embedded_home: Path, figures: Figures
) -> None:
    """The embedded Redis (append-only, fsync every second) killed with SIGKILL right
    after the last send returned: a process crash, not a machine crash, so every
    acknowledged send is there when it is started again."""
    first = EmbeddedRedis(embedded_home)
    with RedisQueue("kept", first.attach()) as queue:
        for i in range(2_000):
            queue.send("job.kept", {"i": i})
    pid = int((embedded_home / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while first.is_running() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not first.is_running()
    second = EmbeddedRedis(embedded_home)
    with RedisQueue("kept", second.attach()) as queue:
        kept = sum(queue.stats()["ready"].values())
    first.detach()
    second.detach()
    figures(
        f"embedded Redis SIGKILL+restart: acknowledged 2,000, kept {kept:,}, lost {2000 - kept}"
    )
    assert kept == 2_000


@pytest.mark.timeout(60)
def test_a_redis_without_persistence_comes_back_empty_after_a_kill(figures: Figures) -> None:
    """What the queue cannot keep: Redis without persistence, killed and restarted,
    has none of the messages it acknowledged."""
    with RedisServer() as server:
        with RedisQueue("gone", server.url) as queue:
            queue.send_many([("job.gone", {"i": i}) for i in range(1_000)])
            before = sum(queue.stats()["ready"].values())
        server.restart(hard=True)
        with RedisQueue("gone", server.url) as queue:
            exists = queue.exists()
    figures(f"Redis without persistence SIGKILL+restart: acknowledged {before:,}, kept 0")
    assert before == 1_000
    assert not exists
