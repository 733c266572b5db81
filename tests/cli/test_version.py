"""``zevents version`` from a real ``python -m zevents``."""

from __future__ import annotations

import zevents
from tests.cli.conftest import run_cli


def test_version_prints_the_package_and_libzmq_versions() -> None:
    result = run_cli("version")
    assert result.returncode == 0
    line = result.stdout.decode().strip()
    assert line.startswith(f"zevents {zevents.__version__} (pyzmq ")
    assert "libzmq " in line
    assert "\n" not in line
