"""``ClusterServer``: a throwaway Redis Cluster, three masters and three replicas.

For tests, benchmarks and demos of zevents on a cluster: six ``redis-server`` processes
on free loopback ports in a temporary directory, joined with ``CLUSTER MEET``, the
16384 slots split between the masters (``CLUSTER ADDSLOTS``), one replica per master
(``CLUSTER REPLICATE``). A node can be killed and started again, to test failover.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from zevents.errors import QueueError
from zevents.redis.server import _free_port, find_redis_server

__all__ = ["ClusterServer"]

_SLOTS = 16384


class _Node:
    def __init__(self, binary: str, directory: Path, port: int, node_timeout: int) -> None:
        self.binary = binary
        self.directory = directory
        self.port = port
        self.node_timeout = node_timeout
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--logfile", str(self.directory / "redis.log"), "--daemonize", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


class ClusterServer:
    """A Redis Cluster of ``masters`` masters, each with ``replicas`` replicas.

    Use as a context manager, or call ``start()`` and ``stop()``. ``url`` is the
    ``redis+cluster://`` URL zevents (``RedisQueue``, ``--redis``) takes.

    Args:
        binary: The ``redis-server`` to run (see ``find_redis_server``).
        masters: How many masters share the slots.
        replicas: Replicas per master.
        node_timeout: Milliseconds before a silent master is failed over.
        startup_timeout: Seconds to wait for the cluster to be up.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        masters: int = 3,
        replicas: int = 1,
        node_timeout: int = 1000,
        startup_timeout: float = 30.0,
    ) -> None:
        self.binary = find_redis_server(binary)
        self.masters = masters
        self.replicas = replicas
        self.node_timeout = node_timeout
        self.startup_timeout = startup_timeout
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.nodes: list[_Node] = []

    @property
    def ports(self) -> list[int]:
        """Every node's port, masters first (as started)."""
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<port of the first node>``."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> ClusterServer:
        """Start every node, join them and wait until the cluster is up.

        Raises:
            QueueError: It did not come up in time.
        """
        if self.nodes:
            return self
        self._dir = tempfile.TemporaryDirectory(prefix="zevents-cluster-")
        root = Path(self._dir.name)
        count = self.masters * (1 + self.replicas)
        ports: set[int] = set()
        while len(ports) < count:
            ports.add(_free_port())
        self.nodes = [
            _Node(self.binary, root / str(port), port, self.node_timeout) for port in sorted(ports)
        ]
        try:
            for node in self.nodes:
                self._start_node(node)
            self._join()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, node: _Node) -> None:
        """Start ``node`` and wait until it answers; a port another process took
        meanwhile is replaced by a free one."""
        for _ in range(5):
            node.start()
            client = self._client(node.port)
            try:
                deadline = time.monotonic() + self.startup_timeout
                while time.monotonic() < deadline and node.process is not None:
                    if node.process.poll() is not None:
                        break  # it could not start (port taken): try another
                    with contextlib.suppress(Exception):
                        if client.ping():
                            return
                    time.sleep(0.02)
            finally:
                client.close()
            node.kill()
            node.port = _free_port()
        raise QueueError(f"a node of the test cluster did not start: {node.directory}")

    def _client(self, port: int) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=5)

    def _wait(self, what: str, check: Any) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if check():
                    return
            time.sleep(0.05)
        raise QueueError(
            f"the test cluster did not come up: {what} within {self.startup_timeout} s"
        )

    def _join(self) -> None:
        clients = [self._client(node.port) for node in self.nodes]
        try:
            for node in self.nodes[1:]:
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
            count = len(self.nodes)
            self._wait(
                "every node meeting the others",
                lambda: all(len(c.execute_command("CLUSTER", "NODES").splitlines()) == count
                            for c in clients),
            )  # fmt: skip
            bounds = [_SLOTS * i // self.masters for i in range(self.masters + 1)]
            for i in range(self.masters):
                clients[i].execute_command("CLUSTER", "ADDSLOTS", *range(bounds[i], bounds[i + 1]))
            ids = [c.execute_command("CLUSTER", "MYID") for c in clients]
            for r in range(self.replicas):
                for m in range(self.masters):
                    replica = clients[self.masters * (1 + r) + m]
                    master_id = ids[m].decode() if isinstance(ids[m], bytes) else ids[m]
                    self._wait(
                        "a replica seeing its master",
                        lambda replica=replica, master_id=master_id: replica.execute_command(
                            "CLUSTER", "REPLICATE", master_id
                        ),
                    )
            self._wait("cluster_state:ok on every node", lambda: all(_ok(c) for c in clients))
            self._wait("every replica in sync", lambda: _synced(clients[self.masters :]))
        finally:
            for client in clients:
                client.close()

    def kill(self, port: int) -> None:
        """``kill -9`` the node on ``port`` (its data stays, for ``revive``)."""
        self._node(port).kill()

    def revive(self, port: int) -> None:
        """Start the node on ``port`` again; it rejoins (as a replica if it was failed
        over)."""
        self._node(port).start()

    def master_of(self, key: str) -> int:
        """The port of the master serving ``key`` now, as most live nodes see it.

        One node can be wrong for a while: a master restarted after a failover claims
        its old slots until gossip tells it of the newer epoch, so every live node is
        asked and the port most of them name wins (nodes that do not answer are
        skipped).

        Raises:
            QueueError: No live node answered, or none knows a master for the slot.
        """
        import redis

        votes: Counter[int] = Counter()
        for node in self.nodes:
            if node.process is None:
                continue
            client = self._client(node.port)
            try:
                slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
                for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if int(start) <= slot <= int(end):
                        votes[int(master[1])] += 1
            except redis.RedisError:
                continue  # a node starting or stopping: the others decide
            finally:
                client.close()
        if not votes:
            raise QueueError(f"no live node of the test cluster names a master of {key!r}")
        return votes.most_common(1)[0][0]

    def _node(self, port: int) -> _Node:
        for node in self.nodes:
            if node.port == port:
                return node
        raise QueueError(f"no node of the test cluster listens on {port}")

    def stop(self) -> None:
        """Stop every node and remove the directory."""
        for node in self.nodes:
            node.stop()
        self.nodes = []
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> ClusterServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _ok(client: Any) -> bool:
    return b"cluster_state:ok" in client.execute_command("CLUSTER", "INFO")


def _synced(replicas: list[Any]) -> bool:
    for replica in replicas:
        info = replica.info("replication")
        if info.get("role") != "slave" or info.get("master_link_status") != "up":
            return False
    return True
