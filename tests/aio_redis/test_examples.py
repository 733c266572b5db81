"""The asyncio Redis examples run as their docstrings say (subprocesses, with deadlines)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT, child_env

EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**child_env(), "ZEVENTS_REDIS_URL": url}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_async_worker_example_runs_ten_at_once_and_retries(url: str) -> None:
    result = run_example("aio_redis_worker.py", url=url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "20 thumbnails made, at most 10 at once"
    assert lines[1] == "image 13 made on its retry: True; failed: 0"
    assert lines[2].startswith("20 images of 0.2 s each took ")


def test_the_figures_script_measures_both_forms(url: str) -> None:
    result = run_example("aio_redis_figures.py", "--quick", url=url)
    assert result.returncode == 0, result.stderr
    medians = [line for line in result.stdout.splitlines() if line.startswith("median of 1:")]
    assert [m.split(":")[1].strip() for m in medians] == [
        "enqueue, 32 in flight (list)",
        "worker, concurrency 32 (list)",
    ]
