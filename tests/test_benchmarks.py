"""``python -m benchmarks --quick`` runs and reports every figure (speed is not asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, child_env

BENCHMARKS = (
    "throughput",
    "latency",
    "dispatch",
    "enqueue",
    "processing",
    "memory",
    "aio",
    "aio_peers",
    "safe",
)
QUICK_TIMEOUT = 240
#: Rounds of each contender: one pair runs every contender and the harness that
#: alternates them, in a fifth of the default's time (the figures are not judged here,
#: and the run loads both cores while the rest of the suite runs).
PAIRS = 1

pytest.importorskip("rq", reason="the bench extra is not installed")
pytest.importorskip("dramatiq", reason="the bench extra is not installed")
pytest.importorskip("celery", reason="the bench extra is not installed")
pytest.importorskip("psutil", reason="the bench extra is not installed")
pytest.importorskip("taskiq_redis", reason="the bench extra is not installed")
pytest.importorskip("streaq", reason="the bench extra is not installed")
pytest.importorskip("saq", reason="the bench extra is not installed")


@pytest.fixture(scope="module")
def quick_run() -> Iterator[tuple[subprocess.CompletedProcess[str], dict[str, Any]]]:
    with tempfile.TemporaryDirectory(prefix="zbench-") as directory:
        output = Path(directory) / "figures.json"
        try:
            run = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks",
                    "--quick",
                    "--pairs",
                    str(PAIRS),
                    "--json",
                    str(output),
                ],
                cwd=ROOT,
                env=child_env(),
                capture_output=True,
                text=True,
                timeout=QUICK_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the quick run took more than {QUICK_TIMEOUT} s: {exc.stdout!r}")
        assert run.returncode == 0, run.stdout + run.stderr
        yield run, json.loads(output.read_text())


@pytest.mark.timeout(QUICK_TIMEOUT + 30)
def test_quick_run_prints_every_benchmark_with_a_ratio(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    run, _ = quick_run
    lines = run.stdout.splitlines()
    for name in BENCHMARKS:
        mine = [line for line in lines if line.startswith(name + " ")]
        assert mine, f"no figure of {name} in:\n{run.stdout}"
        assert any(" ratio " in line for line in mine), f"{name} prints no ratio"


@pytest.mark.timeout(QUICK_TIMEOUT + 30)
def test_json_holds_every_figure_with_samples_and_a_ratio(
    quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    run, result = quick_run
    figures = result["figures"]
    assert {f["benchmark"] for f in figures} == set(BENCHMARKS)
    printed = [line for line in run.stdout.splitlines() if line.split(" ")[0] in BENCHMARKS]
    assert len(figures) == len(printed)
    for figure in figures:
        assert figure["zevents"], figure
        assert all(math.isfinite(v) and v > 0 for v in figure["zevents"] + figure["baseline"])
        if figure["target"]:
            assert figure["ratio"] is not None, figure
            assert figure["ratio"] > 0, figure
            assert isinstance(figure["met"], bool), figure
    paired = [f for f in figures if f["baseline"]]
    assert all(len(f["zevents"]) == len(f["baseline"]) == PAIRS for f in paired)
    assert result["quick"] is True
    assert result["pairs"] == PAIRS
    assert result["machine"]["cores"]
