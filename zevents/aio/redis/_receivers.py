"""Running a message's receivers on the event loop (private), and how they ended.

Receivers are called in registration order; an ``async def`` one (or one that returns
an awaitable) is awaited before the next runs; a sync one runs on the loop, as
``Bus.fire_async`` runs it. How they ended is the sync worker's ``Outcome``, mapped from
the exception by the sync worker's own code.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from zevents.eventbus import Bus
from zevents.redis._outcome import Outcome, run_inline

__all__ = ["Fire", "firing", "outcome_of"]

#: Fires one event on a bus, awaiting what needs awaiting.
Fire = Callable[[str, Any], Awaitable[Any]]


def firing(bus: Bus) -> Fire:
    """How to fire on ``bus``: its ``fire_async`` where it has one, else each of
    ``bus.receivers(event)`` in order, awaiting the awaitables they return."""
    fire_async = getattr(bus, "fire_async", None)
    if fire_async is not None:
        fire: Fire = fire_async
        return fire

    async def fire_in_order(event: str, payload: Any) -> None:
        for receiver in bus.receivers(event):
            result = receiver(event, payload)
            if inspect.isawaitable(result):
                await result

    return fire_in_order


def _raising(exc: Exception) -> Callable[[], NoReturn]:
    def again() -> NoReturn:
        raise exc

    return again


def outcome_of(exc: Exception) -> Outcome:
    """How receivers that raised ``exc`` ended (and which one raised it).

    The sync worker's ``run_inline`` maps exceptions to outcomes: raising ``exc`` there
    again keeps one mapping for both workers. Cancellation is no outcome: the caller
    lets it propagate (the message goes back unsettled).
    """
    return run_inline(_raising(exc))
