"""The failed store of a queue: the methods ``RedisQueue`` inherits to list failed
messages, put them back, and empty the store."""

from __future__ import annotations

from collections.abc import Iterable

from zevents.redis._parts import QueueParts
from zevents.redis.message import FailedMessage, select_failed

__all__ = ["FailedStore"]


class FailedStore:
    """``failed``, ``retry_failed`` and ``flush_failed`` of ``RedisQueue``."""

    def failed(self: QueueParts) -> list[FailedMessage]:
        """The failed store, oldest failure first."""
        return self.runner.run(self.driver.failed(), f"failed of {self.name!r}")

    def retry_failed(
        self: QueueParts,
        ids: Iterable[str] | None = None,
        event: str | None = None,
        receiver: str | None = None,
    ) -> int:
        """Put failed messages back to be tried afresh; returns how many.

        Each goes back at the priority its body names (the default when it names none).
        The selectors combine; with none, every failed message goes back.

        Args:
            ids: Only these failed-store ids.
            event: Only messages of this event name (or ``*`` pattern).
            receiver: Only messages whose failing receiver is this one (or pattern).
        """
        chosen = select_failed(FailedStore.failed(self), ids=ids, event=event, receiver=receiver)
        if not chosen:  # nothing to write, nor to wait for replicas of
            return 0
        return self._write(self.driver.retry_failed(chosen), f"retry failed of {self.name!r}")

    def flush_failed(self: QueueParts) -> int:
        """Empty the failed store; returns how many messages were dropped."""
        if not self._prepared:
            self._prepare()
        return self.runner.run(self.driver.flush_failed(), f"flush failed of {self.name!r}")
