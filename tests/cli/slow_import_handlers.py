"""A handler module that takes long to import (``serve --handler`` during its set-up).

On import it appends ``importing`` to the file named by ``ZEV_TEST_OUT``, then sleeps,
so a test can signal ``serve`` while it is still loading its handlers.
"""

from __future__ import annotations

import os
import time
from typing import Any

with open(os.environ["ZEV_TEST_OUT"], "ab") as _out:
    _out.write(b"importing\n")
time.sleep(2.0)


def ignore(event: str, payload: Any) -> None:
    """Do nothing."""
