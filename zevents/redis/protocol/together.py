"""Plans run side by side: two plans' steps in one round trip.

A worker acknowledges what it finished and takes more at the same moment; ``together``
makes the two plans one, whose every step is a ``Batch`` of both plans' next steps, so
Redis sees one pipeline instead of two round trips. Sans-I/O, like the plans it joins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from zevents.redis.protocol.steps import Batch, Call, Command, Plan, Step, Wait

__all__ = ["together"]

A = TypeVar("A")
B = TypeVar("B")
_DONE = object()


def _parts(step: Step) -> Sequence[Call | Command | Wait]:
    return step.steps if isinstance(step, Batch) else (step,)


def _advance(plan: Plan[Any], reply: Any, first: bool) -> tuple[Step | None, Any]:
    """The plan's next step (None once it returned), and its result when it did."""
    try:
        return (next(plan) if first else plan.send(reply)), _DONE
    except StopIteration as done:
        return None, done.value


def together(first: Plan[A], second: Plan[B]) -> Plan[tuple[A, B]]:
    """A plan running ``first`` and ``second`` at once: each round trip holds the next
    steps of both (of the one left, once the other has returned); returns both
    results."""
    plans = (first, second)
    steps: list[Step | None] = [None, None]
    results: list[Any] = [_DONE, _DONE]
    for i, plan in enumerate(plans):
        steps[i], results[i] = _advance(plan, None, True)
    while any(step is not None for step in steps):
        live = [i for i, step in enumerate(steps) if step is not None]
        parts = [_parts(steps[i]) for i in live]  # type: ignore[arg-type]
        replies = yield Batch([part for group in parts for part in group])
        at = 0
        for i, group in zip(live, parts, strict=True):
            chunk = replies[at : at + len(group)]
            at += len(group)
            reply = chunk if isinstance(steps[i], Batch) else chunk[0]
            steps[i], results[i] = _advance(plans[i], reply, False)
    return results[0], results[1]
