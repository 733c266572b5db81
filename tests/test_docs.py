"""Every code block in README.md and docs/ runs as written.

Blocks are run in order, in a fresh temporary directory per document. A comment on the
line before a fence steers a block:

- ``<!-- doc: file NAME -->`` writes the block to NAME; a Python file that no later
  shell block runs is then run by itself.
- ``<!-- doc: background -->`` starts the block and leaves it running; at the end of the
  document it gets SIGINT (Ctrl-C) and must exit with status 0 (130 for a pipeline,
  whose reader dies of Ctrl-C as in a terminal).
- ``<!-- doc: output -->`` (on a ``text`` block): exactly what the runnable block before
  it printed, stdout and stderr together as a terminal shows them: every line, in order,
  nothing extra (trailing spaces and blank lines at either end aside).
- ``<!-- doc: output background -->``: the same for the latest background block, waited
  for (with a deadline) until it has printed exactly that.
- ``<!-- doc: interrupt -->`` (on a ``text`` block): Ctrl-C (SIGINT) to every background
  block now; each must exit with status 0 (130 for a pipeline) before the next block.
- ``<!-- doc: install -->``: an install command; checks that zevents is installed.
- ``<!-- doc: ci -->``: set-up commands; each line must be a line of ``.ci/run``.

Python and shell blocks with no comment are run and must exit with status 0. Any other
block must be ``text`` (illustrations) or carry a comment, so nothing is left unchecked.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import ROOT, child_env

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*doc:\s*(\w[\w-]*)\s*(.*?)\s*-->\s*$")
RUNNABLE = {"python", "shell", "bash", "sh"}
BLOCK_TIMEOUT = 90
#: A whole document: a long one (docs/cli.md runs some 60 commands, 20-35 s on an idle
#: 2-core machine) outlasts the suite's 60 s hang guard on a loaded one; each block
#: still has its own BLOCK_TIMEOUT.
DOC_TIMEOUT = 300


@dataclass
class Block:
    language: str
    code: str
    marker: str | None
    argument: str
    line: int


def blocks_of(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start = i
        language = match.group(1)
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i])
            i += 1
        marker = MARKER.match(lines[start - 1]) if start > 0 else None
        found.append(
            Block(
                language,
                "\n".join(body) + "\n",
                marker.group(1) if marker else None,
                marker.group(2) if marker else "",
                start + 1,
            )
        )
        i += 1
    return found


def run_environment(workdir: Path) -> dict[str, str]:
    env = child_env()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("ZEVENTS_CONFIG", None)
    return env


def command(block: Block, *, background: bool = False) -> list[str]:
    if block.language == "python":
        return [sys.executable, "-c", block.code]
    code = block.code.replace("python ", f"{sys.executable} ")
    lines = [line for line in code.splitlines() if line.strip() and not line.startswith("#")]
    if background and len(lines) == 1:
        # exec: the signal then reaches the program itself, not a waiting shell
        code = "exec " + lines[0]
    return ["bash", "-euo", "pipefail", "-c", code]


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="zevdoc"))
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture
def docs_redis_url() -> Iterator[str]:
    """A redis-server of the tests' own for each document that uses zevents.redis: what
    one document leaves in a queue never reaches another's workers."""
    from zevents.redis.server import RedisServer

    with RedisServer() as server:
        yield server.url


@pytest.mark.timeout(DOC_TIMEOUT)
@pytest.mark.parametrize("path", DOCS, ids=[p.relative_to(ROOT).as_posix() for p in DOCS])
def test_code_blocks_run_as_written(
    path: Path, workdir: Path, request: pytest.FixtureRequest
) -> None:
    blocks = blocks_of(path)
    env = run_environment(workdir)
    if "zevents.redis" in path.read_text():
        env["ZEVENTS_REDIS_URL"] = request.getfixturevalue("docs_redis_url")
    printed: list[str] = []
    background: list[Background] = []
    stopped: list[Background] = []
    shell_text = "\n".join(b.code for b in blocks if b.language in {"shell", "bash", "sh"})
    try:
        for block in blocks:
            where = f"{path.name}:{block.line}"
            if block.marker == "install":
                assert importlib.metadata.version("zevents"), where
                assert "pip install" in block.code, where
            elif block.marker == "ci":
                ci_lines = {line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()}
                for line in filter(None, (line.strip() for line in block.code.splitlines())):
                    assert line in ci_lines, f"{where}: {line!r} is not in .ci/run"
            elif block.marker == "file":
                (workdir / block.argument).write_text(block.code)
                runs_it = re.search(rf"python3?\s+{re.escape(block.argument)}\b", shell_text)
                if block.argument.endswith(".py") and not runs_it:
                    printed.append(
                        run_block(
                            Block("python", block.code, None, "", block.line), workdir, env, where
                        )
                    )
            elif block.marker == "output":
                expect_printed(block, printed, background + stopped, where)
            elif block.marker == "interrupt":
                assert block.language == "text", where
                stop_background(background, path)
                stopped.extend(background)
                background.clear()
            elif block.marker == "background":
                assert block.language in RUNNABLE, where
                log = workdir / f"background-{block.line}.log"
                with log.open("w") as out:
                    proc = subprocess.Popen(
                        command(block),
                        cwd=workdir,
                        env=env,
                        text=True,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                background.append((block, proc, log))
            elif block.marker is not None:
                pytest.fail(f"{where}: unknown doc marker {block.marker!r}")
            elif block.language in RUNNABLE:
                printed.append(run_block(block, workdir, env, where))
            else:
                assert block.language == "text", (
                    f"{where}: a {block.language or 'plain'} block must be text or carry a "
                    "<!-- doc: ... --> marker"
                )
    finally:
        stop_background(background, path)


Background = tuple[Block, "subprocess.Popen[str]", Path]


def lines_of(text: str) -> list[str]:
    """The lines of ``text``, trailing spaces and blank lines at either end removed."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def expect_printed(
    block: Block, printed: list[str], background: list[Background], where: str
) -> None:
    """``block`` is exactly what the block it describes printed (a background block:
    waited for, with a deadline, until it has printed exactly that)."""
    wanted = lines_of(block.code)
    if block.argument == "background":
        assert background, f"{where}: no background block before this output"
        log = background[-1][2]
        deadline = time.monotonic() + 15
        while lines_of(log.read_text()) != wanted and time.monotonic() < deadline:
            time.sleep(0.05)
        got = lines_of(log.read_text())
    else:
        assert not block.argument, f"{where}: unknown output argument {block.argument!r}"
        assert printed, f"{where}: no block ran before this output"
        got = lines_of(printed[-1])
    assert got == wanted, (
        f"{where}: printed\n" + "\n".join(got) + "\n--- the doc says\n" + ("\n".join(wanted))
    )


def run_block(block: Block, workdir: Path, env: dict[str, str], where: str) -> str:
    """Run a block to its end; what it printed, stdout and stderr interleaved as a
    terminal shows them."""
    result = subprocess.run(
        command(block),
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    assert result.returncode == 0, f"{where} exited {result.returncode}\n{result.stdout}"
    return result.stdout


def stop_background(background: list[Background], path: Path) -> None:
    """Ctrl-C to every background block; each must exit cleanly."""
    failures = []
    for block, proc, log in background:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
                failures.append(f"{path.name}:{block.line} did not stop on SIGINT")
                continue
        # In a pipeline, Ctrl-C also ends the reader (jq, head...), which exits 130 as in
        # a terminal; the zevents command itself must still have stopped cleanly.
        interrupted_pipeline = proc.returncode == 130 and "|" in block.code
        if proc.returncode != 0 and not interrupted_pipeline:
            failures.append(
                f"{path.name}:{block.line} exited {proc.returncode}:\n{log.read_text()}"
            )
    assert not failures, "\n".join(failures)
