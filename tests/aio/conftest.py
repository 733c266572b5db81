"""Fixtures of the asyncio tests: sync service children to send to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ServiceProcess

StartService = Callable[..., ServiceProcess]


@pytest.fixture
def start_service(short_tmp: Path) -> Iterator[StartService]:
    """Start a sync service child (tests/children/serve.py), stopped after the test."""
    started: list[ServiceProcess] = []

    def start(*listen: dict[str, Any] | str, **options: Any) -> ServiceProcess:
        service = ServiceProcess(short_tmp, *listen, **options)
        started.append(service)
        return service.wait_ready()

    yield start
    for service in started:
        service.stop()
