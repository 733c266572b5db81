"""How a message's receivers ended, run inline or in a child process (private)."""

from __future__ import annotations

import logging
import os
import signal
import types
import warnings
from collections.abc import Callable
from typing import Any

import orjson

from zevents.errors import PermanentError, WaitingError

logger = logging.getLogger(__name__)

__all__ = ["Outcome", "receiver_of", "run_forked", "run_inline"]

#: What happened in the child: kind is ok, permanent, waiting or error.
Outcome = dict[str, Any]


def run_inline(fn: Callable[[], Any]) -> Outcome:
    """Run ``fn`` here and report how it ended."""
    try:
        fn()
    except PermanentError as exc:
        return {"kind": "permanent", "error": _text(exc), "receiver": receiver_of(exc)}
    except WaitingError as exc:
        return {"kind": "waiting", "error": _text(exc), "delay": exc.delay}
    except Exception as exc:
        logger.debug("a receiver raised", exc_info=True)
        return {"kind": "error", "error": _text(exc), "receiver": receiver_of(exc)}
    return {"kind": "ok"}


def receiver_of(exc: BaseException) -> str | None:
    """The receiver a traceback went through: the first frame outside zevents' plumbing."""
    tb: types.TracebackType | None = exc.__traceback__
    plumbing = ("zevents/eventbus.py", "zevents/redis/worker.py", "zevents/redis/_outcome.py")
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.endswith(plumbing) and not code.co_name.startswith("<"):
            module = tb.tb_frame.f_globals.get("__name__", "?")
            return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"
        tb = tb.tb_next
    return None


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_forked(fn: Callable[[], Any]) -> Outcome:
    """Run ``fn`` in a forked child and report how it ended.

    A child that dies without reporting (a signal, ``os._exit``, a crash in C code)
    comes back as an ``error`` outcome naming its exit status.
    """
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() with threads; the child only runs receivers
        # and leaves with os._exit, and redis-py's pools reconnect after a fork.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read)
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_IGN)  # the parent decides when to stop
            data = orjson.dumps(run_inline(fn), default=str)
            view = memoryview(data)
            while view:
                view = view[os.write(write, view) :]
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(write)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(read, 65536)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read)
    _, status = os.waitpid(pid, 0)
    if chunks:
        try:
            result: Outcome = orjson.loads(b"".join(chunks))
            return result
        except orjson.JSONDecodeError:
            pass
    if os.WIFSIGNALED(status):
        why = f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    else:
        why = f"exited with status {os.waitstatus_to_exitcode(status)}"
    return {"kind": "error", "error": f"ChildProcessError: the receiver's process {why}"}
