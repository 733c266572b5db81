"""How an async worker waits out a Redis outage (private), and what it says meanwhile."""

from __future__ import annotations

import logging
import time

from zevents.errors import QueueError

logger = logging.getLogger("zevents.aio.redis.worker")

__all__ = ["Outage"]

# The longest wait between tries, and how often a warning is logged while it lasts (s).
_OUTAGE_MAX = 10.0
_OUTAGE_WARN_EVERY = 10.0


class Outage:
    """How long to wait while Redis is unreachable (doubling from 0.5 s to 10 s), and
    whether to say so as a warning (when it starts, then at least every 10 s) or only
    in the debug log."""

    def __init__(self) -> None:
        self.wait = 0.0
        self._warned_at = 0.0

    def next(self, worker_id: str, exc: QueueError) -> float:
        """Redis failed again: log it; the seconds to wait."""
        now = time.monotonic()
        loud = not self.wait or now - self._warned_at >= _OUTAGE_WARN_EVERY
        if loud:
            self._warned_at = now
        self.wait = min(max(self.wait * 2, 0.5), _OUTAGE_MAX)
        level = logging.WARNING if loud else logging.DEBUG
        logger.log(level, "worker %s: %s; retrying in %.1f s", worker_id, exc, self.wait)
        return self.wait

    def over(self, worker_id: str) -> None:
        """Redis answered: the outage (if any) is over."""
        if self.wait:
            logger.info("Redis is reachable again; worker %s resumes", worker_id)
            self.wait = 0.0
