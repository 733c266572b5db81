"""How a message's receivers ended, run inline or in a child process (private)."""

from __future__ import annotations

import enum
import logging
import os
import signal
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from zevents.errors import PermanentError, WaitingError

logger = logging.getLogger(__name__)

__all__ = ["Outcome", "OutcomeKind", "receiver_of", "run_forked", "run_inline"]


class OutcomeKind(enum.Enum):
    """How the receivers of one message ended."""

    #: Every receiver returned: acknowledge the message.
    OK = "ok"
    #: A receiver raised ``PermanentError``: fail the message now.
    PERMANENT = "permanent"
    #: A receiver raised ``WaitingError``: put it back without counting the attempt.
    WAITING = "waiting"
    #: A receiver raised anything else: a failed attempt.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the receivers of one message ended.

    Attributes:
        kind: What happened.
        error: ``"Type: message"`` of the exception, unless ``OK``.
        receiver: The receiver that raised, if known.
        delay: ``WAITING``: the seconds the receiver asked to wait (None: the backoff).
    """

    kind: OutcomeKind
    error: str | None = None
    receiver: str | None = None
    delay: float | None = None

    def to_json(self) -> bytes:
        """The outcome as JSON (a forked child reports it so)."""
        return orjson.dumps(
            {
                "kind": self.kind.value,
                "error": self.error,
                "receiver": self.receiver,
                "delay": self.delay,
            }
        )

    @classmethod
    def from_json(cls, data: bytes) -> Outcome:
        """The outcome ``to_json`` wrote.

        Raises:
            ValueError: ``data`` is not such an outcome.
        """
        fields: Any = orjson.loads(data)
        if not isinstance(fields, dict):
            raise ValueError("not an outcome")
        delay = fields.get("delay")
        return cls(
            OutcomeKind(fields.get("kind")),
            fields.get("error"),
            fields.get("receiver"),
            float(delay) if delay is not None else None,
        )


#: Every receiver returned.
OK = Outcome(OutcomeKind.OK)


def _text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_inline(fn: Callable[[], Any]) -> Outcome:
    """Run ``fn`` here and report how it ended."""
    try:
        fn()
    except PermanentError as exc:
        return Outcome(OutcomeKind.PERMANENT, _text(exc), receiver_of(exc))
    except WaitingError as exc:
        return Outcome(OutcomeKind.WAITING, _text(exc), delay=exc.delay)
    except Exception as exc:
        logger.debug("a receiver raised", exc_info=True)
        return Outcome(OutcomeKind.ERROR, _text(exc), receiver_of(exc))
    return OK


def receiver_of(exc: BaseException) -> str | None:
    """The receiver a traceback went through: its first frame outside zevents' own code
    (the bus, the worker, the command line's handler wrappers) and outside lambdas."""
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        module = str(tb.tb_frame.f_globals.get("__name__", "?"))
        ours = module == "zevents" or module.startswith("zevents.")
        if not ours and not code.co_name.startswith("<"):
            return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"
        tb = tb.tb_next
    return None


def _child(fn: Callable[[], Any], read: int, write: int) -> None:
    """The forked child: run ``fn``, write the outcome, leave without clean-up."""
    code = 0
    try:
        os.close(read)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)  # the parent decides when to stop
        view = memoryview(run_inline(fn).to_json())
        while view:
            view = view[os.write(write, view) :]
    except BaseException:
        code = 70
    finally:
        os._exit(code)


def run_forked(fn: Callable[[], Any]) -> Outcome:
    """Run ``fn`` in a forked child and report how it ended.

    A child that dies without reporting (a signal, ``os._exit``, a crash in C code)
    comes back as an ``ERROR`` outcome naming its exit status.
    """
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() with threads; the child only runs receivers
        # and leaves with os._exit, and redis-py's pools reconnect after a fork.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        _child(fn, read, write)
    os.close(write)
    chunks = []
    try:
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
    finally:
        os.close(read)
    _, status = os.waitpid(pid, 0)
    if chunks:
        try:
            return Outcome.from_json(b"".join(chunks))
        except ValueError:
            pass
    if os.WIFSIGNALED(status):
        why = f"killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    else:
        why = f"exited with status {os.waitstatus_to_exitcode(status)}"
    return Outcome(OutcomeKind.ERROR, f"ChildProcessError: the receiver's process {why}")
