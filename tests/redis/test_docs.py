"""docs/redis.md's Python blocks and examples/redis_worker.py run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "redis.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def run(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZEVENTS_REDIS_URL": url}
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_python_block_in_redis_docs_runs(url: str, code: str) -> None:
    proc = run(["-c", code], url)
    assert proc.returncode == 0, proc.stderr


def test_redis_docs_have_python_blocks() -> None:
    assert len(BLOCKS) >= 10


def test_redis_worker_example_retries_and_stores_the_failure(url: str) -> None:
    proc = run([str(ROOT / "examples" / "redis_worker.py")], url)
    assert proc.returncode == 0, proc.stderr
    assert "shipped order 3 (attempt 2" in proc.stdout
    assert "in the failed store: orders.created {'id': 7}" in proc.stdout
    assert proc.stdout.index("shipped order 9") < proc.stdout.index("shipped order 1 ")
