"""Fixtures shared by every test: endpoints, tracked zmq contexts, service children."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.helpers import ServiceProcess


def _share_bytecode() -> None:
    """The tests start hundreds of Python processes (the CLI, examples, scripts), each
    importing zevents afresh. With bytecode writing off (``PYTHONDONTWRITEBYTECODE``, as
    CI images set it) each would compile every module of it again, about a third of a
    CLI process's start. They share one bytecode cache for the run instead, in a
    temporary directory (not in the checkout), removed at the end. Run once, in the
    first process (xdist's workers inherit the environment)."""
    if "PYTHONDONTWRITEBYTECODE" not in os.environ or "PYTHONPYCACHEPREFIX" in os.environ:
        return
    directory = tempfile.mkdtemp(prefix="zevents-pyc-")
    os.environ["PYTHONPYCACHEPREFIX"] = directory
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    atexit.register(shutil.rmtree, directory, True)


_share_bytecode()


def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path (ipc paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="zev", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ipc_endpoint(short_tmp: Path) -> str:
    return f"ipc://{short_tmp}/events.sock"


@pytest.fixture
def tcp_endpoint() -> str:
    return f"tcp://127.0.0.1:{free_tcp_port()}"


@pytest.fixture(params=["ipc", "tcp"])
def endpoint(request: pytest.FixtureRequest, short_tmp: Path) -> str:
    """An endpoint on each transport."""
    if request.param == "ipc":
        return f"ipc://{short_tmp}/events.sock"
    return f"tcp://127.0.0.1:{free_tcp_port()}"


class TrackingContext(zmq.Context):  # type: ignore[type-arg]
    """A context that keeps every socket it made, so none is garbage-collected unclosed."""

    tracked: list[zmq.Socket[bytes]]

    def __init__(self) -> None:
        super().__init__()
        self.tracked = []

    def socket(self, *args: Any, **kwargs: Any) -> Any:
        sock = super().socket(*args, **kwargs)
        self.tracked.append(sock)
        return sock


@pytest.fixture
def context() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    """A zmq context whose sockets are all closed with linger=0 after the test."""
    ctx = TrackingContext()
    yield ctx
    ctx.destroy(linger=0)


@pytest.fixture
def services(short_tmp: Path) -> Iterator[list[ServiceProcess]]:
    """The ``ServiceProcess`` children a test started (see ``start``), stopped after it,
    before its ``short_tmp`` goes."""
    started: list[ServiceProcess] = []
    yield started
    for service in started:
        service.stop()


@pytest.fixture
def start(short_tmp: Path, services: list[ServiceProcess]) -> Any:
    """Start a ``ServiceProcess`` child and wait until it serves; stopped after the test."""

    def start(*listen: dict[str, Any] | str, **options: Any) -> ServiceProcess:
        service = ServiceProcess(short_tmp, *listen, **options)
        services.append(service)
        return service.wait_ready()

    return start
