"""Retry policy and priority ranges for workers."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from zevents.errors import ConfigError
from zevents.redis.defaults import (
    DEFAULT_BACKOFF,
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_CAP,
    DEFAULT_JITTER,
    DEFAULT_MAX_ATTEMPTS,
)

__all__ = ["BACKOFFS", "RetryPolicy", "select_priorities"]

#: The backoff kinds ``RetryPolicy`` accepts.
BACKOFFS = ("exponential", "linear")


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and after how long, a failed message is tried again.

    Args:
        max_attempts: Attempts in all (at least 1); after the last one the message goes
            to the failed store.
        backoff: ``"exponential"`` waits ``base``, ``2*base``, ``4*base``, ... up to
            ``cap``; ``"linear"`` waits ``base * attempt``.
        base: Seconds of the first wait.
        cap: The longest wait in seconds.
        jitter: The fraction of each wait drawn at random, from 0 (exact waits, the
            default) to 1 ("full jitter": anywhere between 0 and the wait). Spreads the
            retries of messages that failed together, e.g. when a service they call
            went down.

    Raises:
        ConfigError: An option out of range (``option`` names it).
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: str = DEFAULT_BACKOFF
    base: float = DEFAULT_BACKOFF_BASE
    cap: float = DEFAULT_BACKOFF_CAP
    jitter: float = DEFAULT_JITTER

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigError("max_attempts must be a whole number", option="max_attempts")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1", option="max_attempts")
        if self.backoff not in BACKOFFS:
            raise ConfigError(
                f"backoff must be 'exponential' or 'linear', not {self.backoff!r}",
                option="backoff",
            )
        for name in ("base", "cap"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(
                    f"{name} must be a finite number of seconds >= 0, not {value!r}",
                    option=name,
                )
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError("jitter must be between 0 and 1", option="jitter")

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
        ConfigError: The spec is malformed or selects nothing (``option`` is
            ``"serve"``).
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
            raise ConfigError(
                f"bad priority range {spec!r}: use 10, 20-40, 25- or -20", option="serve"
            ) from None
        chosen = [p for p in ordered if low <= p <= high]
    else:
        wanted = set(spec)
        chosen = [p for p in ordered if p in wanted]
    if not chosen:
        raise ConfigError(
            f"priorities {spec!r} select none of the queue's levels {ordered}", option="serve"
        )
    return chosen
