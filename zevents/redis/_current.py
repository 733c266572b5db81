"""``current()``: the message the worker is processing on this thread."""

from __future__ import annotations

from contextvars import ContextVar

from zevents.errors import QueueError
from zevents.redis.message import Message

__all__ = ["current"]

_current: ContextVar[Message | None] = ContextVar("zevents_redis_current", default=None)


def current() -> Message:
    """The message being processed, from inside a worker's receiver.

    Returns:
        The message, with ``id``, ``event``, ``attempt``, ``priority``, ``enqueued_at``,
        ``touch()`` and ``set_status()``.

    Raises:
        QueueError: Called outside a receiver run by a ``Worker``.
    """
    message = _current.get()
    if message is None:
        raise QueueError("zevents.redis.current() is only available inside a worker's receiver")
    return message
