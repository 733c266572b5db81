"""A master of a real Redis Cluster killed mid-run: what ``min_replicas`` keeps.

A producer sends 5,000 messages with ``min_replicas=1`` and a ``zevents bridge
--min-replicas 1`` child stores confirmed ZeroMQ events, into one queue a worker child
drains; the master of the queue's slot is SIGKILLed, its replica takes over, the
killed node is started again and rejoins as the new master's replica. Every send
that was acknowledged, and every event the bridge confirmed, must be handled.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.cli.conftest import CliProcess, cli_env
from tests.conftest import free_tcp_port
from tests.faults.conftest import Figures
from tests.helpers import wait_for
from zevents.errors import DeliveryError, QueueError, QueueUnavailable, ReplicationError
from zevents.eventbus import Bus
from zevents.events import PUSH_ERROR
from zevents.listener import EventListener
from zevents.redis import RedisQueue
from zevents.redis.cluster import ClusterServer

pytestmark = pytest.mark.faults

MESSAGES = 5000
BRIDGED = 1000
KILL_AFTER = 1500

# The worker child: every payload it handles, one line each, in the order handled.
WORKER = """
import sys
from zevents.eventbus import Bus
from zevents.redis import RedisQueue, Worker

url, name, out = sys.argv[1:4]
handled = open(out, "a", buffering=1)
bus = Bus()
bus.listen("fo.*", lambda event, payload: handled.write(f"{payload}\\n"))
with RedisQueue(name, url, socket_timeout=2) as queue:
    worker = Worker(queue, bus, keep_alive=2.0)
    print("ready", flush=True)
    worker.run()
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterServer]:
    with ClusterServer(node_timeout=1000) as server:
        yield server


def key_of(queue: str) -> str:
    return f"zevents:{{{queue}}}:msgs"


def node(port: int) -> Any:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2)


def replicas_of(port: int) -> list[int]:
    """The ports of the replicas connected to the master on ``port``."""
    client = node(port)
    try:
        info = client.info("replication")
    finally:
        client.close()
    # the slaveN entries INFO lists (a replica just dropped can leave the count ahead)
    return [
        int(value["port"])
        for name, value in info.items()
        if name.startswith("slave") and isinstance(value, dict)
    ]


def new_master(cluster: ClusterServer, key: str, old: int) -> bool:
    """Whether the master of ``key`` is no longer the node on ``old`` (False while no
    live node names one)."""
    with contextlib.suppress(QueueError):
        return cluster.master_of(key) != old
    return False


def rejoined(cluster: ClusterServer, key: str, old: int) -> bool:
    """Whether the node on ``old`` is a connected replica of the master of ``key``."""
    # A node still starting, or loading its data: master_of raises QueueError, INFO a
    # RedisError (refused, timed out, or LOADING).
    with contextlib.suppress(QueueError, redis.RedisError):
        master = cluster.master_of(key)
        return master != old and old in replicas_of(master)
    return False


class Producer:
    """Sends ``count`` messages with ``min_replicas=1``, each until one is acknowledged;
    a refused send (``QueueUnavailable``, ``ReplicationError``) is tried again after a
    short pause."""

    def __init__(self, url: str, queue: str, count: int) -> None:
        self.url, self.queue, self.count = url, queue, count
        self.acknowledged: list[int] = []
        self.refused: Counter[str] = Counter()
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with RedisQueue(
                self.queue, self.url, min_replicas=1, replica_timeout=0.5, socket_timeout=2
            ) as queue:
                for n in range(self.count):
                    while not self.stopped.is_set():
                        try:
                            queue.send("fo.produced", n)
                        except QueueUnavailable as exc:
                            self.refused[type(exc).__name__] += 1
                            self.stopped.wait(0.05)
                            continue
                        self.acknowledged.append(n)
                        break
        except BaseException as exc:
            self.error = exc


class BridgeSender:
    """Sends ``count`` events to the bridge with a confirmed window; records the ones
    whose confirmation came (those not reported by ``zevents.push.error``)."""

    def __init__(self, endpoint: str, count: int) -> None:
        self.count = count
        self.failed: list[str] = []
        self.sent: list[str] = []
        bus = Bus("fo-sender")
        bus.listen(PUSH_ERROR, lambda event, report: self.failed.append(report["payload"]))
        self.listener = EventListener(
            connect=endpoint, confirmed=True, window=50, bus=bus, rcvtimeo=15_000
        )
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for n in range(self.count):
            if self.stopped.is_set():
                break
            payload = f"b{n}"
            try:
                self.listener.send("fo.bridged", payload)
            except DeliveryError:
                self.failed.append(payload)
            self.sent.append(payload)
            self.stopped.wait(0.01)  # spread the events over the failover
        with contextlib.suppress(DeliveryError):
            self.listener.flush(timeout=30)

    @property
    def confirmed(self) -> set[str]:
        return set(self.sent) - set(self.failed)


def start_worker(url: str, queue: str, folder: Path) -> tuple[subprocess.Popen[bytes], Path]:
    handled = folder / "handled.txt"
    handled.touch()
    with (folder / "worker.out").open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", WORKER, url, queue, str(handled)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=cli_env(),
        )
    wait_for(lambda: b"ready" in (folder / "worker.out").read_bytes(), 30, what="worker")
    return child, handled


def stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)


@pytest.mark.timeout(150)
def test_acknowledged_sends_survive_a_master_failover(
    cluster: ClusterServer, tmp_path: Path, figures: Figures
) -> None:
    """Kill -9 the queue's master mid-run: every acknowledged send and every event the
    bridge confirmed is handled, and producer, bridge and worker resume by themselves."""
    queue, key = "failover", key_of("failover")
    worker, handled_file = start_worker(cluster.url, queue, tmp_path)
    endpoint = f"tcp://127.0.0.1:{free_tcp_port()}"
    command = ["bridge", "--queue", queue, "--redis", cluster.url, "--min-replicas", "1"]
    bridge = CliProcess([*command, "--confirmed", endpoint], cli_env(), None)
    producer = Producer(cluster.url, queue, MESSAGES)
    sender: BridgeSender | None = None
    try:
        bridge.wait_ready()
        assert bridge.proc.poll() is None, bridge.stderr_text
        sender = BridgeSender(endpoint, BRIDGED)
        producer.thread.start()
        wait_for(lambda: len(producer.acknowledged) >= KILL_AFTER, 60, what="sends")
        sender.thread.start()
        wait_for(lambda: len(sender.sent) >= 100, 30, what="bridged events")
        old = cluster.master_of(key)
        acknowledged_before = len(producer.acknowledged)
        cluster.kill(old)
        killed_at = time.monotonic()
        wait_for(lambda: new_master(cluster, key, old), 30, 0.05, what="failover")
        failover_seconds = time.monotonic() - killed_at
        cluster.revive(old)
        # Asked again each time: just after its restart the old master may still claim
        # the slots it lost (until the cluster's gossip tells it), so one answer read
        # then can name the old master itself.
        wait_for(lambda: rejoined(cluster, key, old), 30, 0.05, what="the old master rejoining")
        rejoin_seconds = time.monotonic() - killed_at
        producer.thread.join(90)
        sender.thread.join(60)
        assert producer.error is None, repr(producer.error)
        assert not producer.thread.is_alive()
        assert not sender.thread.is_alive()
        wanted = {str(n) for n in producer.acknowledged} | sender.confirmed

        def handled() -> Counter[str]:
            return Counter(handled_file.read_text().split())

        with contextlib.suppress(AssertionError):
            wait_for(lambda: wanted <= set(handled()), 60, 0.1, what="every message handled")
        with RedisQueue(queue, cluster.url) as inspect:
            wait_for(lambda: inspect.stats()["processing"] == 0, 30, 0.1, what="none processing")
            left = inspect.stats()
        seen = handled()
        lost = wanted - set(seen)
        summary = (
            f"failover: sent {MESSAGES} (acknowledged {len(producer.acknowledged)}, "
            f"{acknowledged_before} before the kill; refused attempts "
            f"{dict(producer.refused)}), bridge sent {len(sender.sent)} confirmed "
            f"{len(sender.confirmed)} not confirmed {len(sender.sent) - len(sender.confirmed)}; "
            f"handled {len(seen)} distinct, duplicates {sum(seen.values()) - len(seen)}, "
            f"lost {len(lost)}; failover {failover_seconds:.1f} s, old master back as a "
            f"replica after {rejoin_seconds:.1f} s; left ready {left['ready']} processing "
            f"{left['processing']}; worker {'running' if worker.poll() is None else 'exited'}, "
            f"bridge {'running' if bridge.proc.poll() is None else 'exited'}"
        )
        figures(summary)
        assert len(producer.acknowledged) == MESSAGES, summary
        assert not lost, f"{sorted(lost)[:10]} ... {summary}"
        assert worker.poll() is None, summary
        assert bridge.proc.poll() is None, summary
        assert left["processing"] == 0, summary
    finally:
        producer.stopped.set()
        if sender is not None:
            sender.stopped.set()
            sender.thread.join(30)
            sender.listener.close(linger=0)
        producer.thread.join(30)
        bridge.stop(signal.SIGTERM)
        bridge.kill()  # closes its pipes
        stop(worker)


@pytest.mark.timeout(90)
def test_sends_wait_for_a_replica_and_are_refused_while_none_is_left(
    cluster: ClusterServer, figures: Figures
) -> None:
    """With min_replicas=1, a send to a master whose replica is dead is refused with
    ``ReplicationError`` within the replica timeout, and accepted again once the
    replica is back; without min_replicas the master's word is taken."""
    queue, key = "refusals", key_of("refusals")
    master = cluster.master_of(key)
    (replica,) = replicas_of(master)
    with (
        RedisQueue(queue, cluster.url, min_replicas=1, replica_timeout=0.3) as waiting,
        RedisQueue(queue, cluster.url) as plain,
    ):
        waiting.send("fo.kept", 0)
        cluster.kill(replica)
        wait_for(lambda: not replicas_of(master), 10, 0.05, what="the master seeing it go")
        started = time.monotonic()
        with pytest.raises(ReplicationError) as refused:
            waiting.send("fo.refused", 1)
        refused_in = time.monotonic() - started
        assert (refused.value.acknowledged, refused.value.wanted) == (0, 1)
        assert isinstance(refused.value, QueueUnavailable)
        assert refused_in < 2.0
        with pytest.raises(ReplicationError):
            waiting.send_many([("fo.refused", n) for n in range(2, 12)])
        plain.send("fo.unreplicated", 12)  # no replica asked for: accepted
        cluster.revive(replica)
        revived = time.monotonic()
        refusals = 0

        def accepted() -> bool:
            nonlocal refusals
            try:
                waiting.send("fo.accepted", 13)
            except ReplicationError:
                refusals += 1
                return False
            return True

        wait_for(accepted, 30, 0.1, what="a send accepted after the replica rejoined")
        back_in = time.monotonic() - revived
        assert replica in replicas_of(master)
        assert waiting.send_many([("fo.accepted", n) for n in range(14, 24)])
        summary = (
            f"replica loss: refused in {refused_in:.2f} s (replica_timeout 0.3 s); "
            f"{refusals} send(s) refused after the revive; accepted again "
            f"{back_in:.1f} s after the replica was started"
        )
        figures(summary)
