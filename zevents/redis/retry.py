"""Retry policy and priority ranges for workers."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_ATTEMPTS", "RetryPolicy", "select_priorities"]

#: Attempts before a message goes to the failed store.
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and after how long, a failed message is tried again.

    Args:
        max_attempts: Attempts in all; after the last one the message goes to the
            failed store.
        backoff: ``"exponential"`` waits ``base``, ``2*base``, ``4*base``, ... up to
            ``cap``; ``"linear"`` waits ``base * attempt``.
        base: Seconds of the first wait.
        cap: The longest wait in seconds.
        jitter: The fraction of each wait drawn at random, from 0 (exact waits, the
            default) to 1 ("full jitter": anywhere between 0 and the wait). Spreads the
            retries of messages that failed together, e.g. when a service they call
            went down.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: str = "exponential"
    base: float = 1.0
    cap: float = 960.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff not in ("exponential", "linear"):
            raise ValueError(f"backoff must be 'exponential' or 'linear', not {self.backoff!r}")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        attempt = max(attempt, 1)
        if self.backoff == "linear":
            wait = float(min(self.base * attempt, self.cap))
        else:
            wait = float(min(self.base * 2.0 ** min(attempt - 1, 64), self.cap))
        if self.jitter:
            wait -= wait * self.jitter * random.random()
        return wait

    def is_exhausted(self, attempt: int) -> bool:
        """Whether attempt ``attempt`` was the last one allowed."""
        return attempt >= self.max_attempts


def select_priorities(levels: Iterable[int], spec: str | Iterable[int] | None) -> list[int]:
    """The levels a worker serves, highest first.

    Args:
        levels: The queue's priority levels.
        spec: ``None`` (all), a list of levels, or a range string: ``"10"``,
            ``"20-40"``, ``"25-"`` (25 and up), ``"-20"`` (20 and down).

    Raises:
        ValueError: The spec is malformed or selects nothing.
    """
    ordered = sorted(set(levels), reverse=True)
    if spec is None:
        return ordered
    if isinstance(spec, str):
        text = spec.strip()
        low: float
        high: float
        try:
            if "-" in text[1:] or text.startswith("-") or text.endswith("-"):
                left, _, right = (
                    text.rpartition("-") if text.startswith("-") else text.partition("-")
                )
                low = int(left) if left else float("-inf")
                high = int(right) if right else float("inf")
            else:
                low = high = int(text)
        except ValueError:
            raise ValueError(f"bad priority range {spec!r}: use 10, 20-40, 25- or -20") from None
        chosen = [p for p in ordered if low <= p <= high]
    else:
        wanted = set(spec)
        chosen = [p for p in ordered if p in wanted]
    if not chosen:
        raise ValueError(f"priorities {spec!r} select none of the queue's levels {ordered}")
    return chosen
