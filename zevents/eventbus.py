"""The local signal bus: named events over blinker signals, with ``*`` patterns.

``fire`` calls receivers; ``fire_async`` also awaits the ``async def`` ones (and any
awaitable a receiver returns). Whether a receiver is a coroutine function is found
out once, when it is registered: ``fire`` then refuses an event that would reach one,
before calling any receiver, instead of leaving a coroutine that nobody awaits.
"""

from __future__ import annotations

import contextvars
import inspect
import re
import threading
from collections.abc import Callable, Iterator
from threading import get_ident
from typing import Any, NamedTuple, NoReturn, TypeVar

from blinker import NamedSignal, Namespace

from zevents.errors import ConfigError, ReceiverError

__all__ = ["Bus", "Receiver", "Subscription", "current_bus", "is_async_receiver", "matcher"]

#: A bus receiver: called as ``receiver(event, payload)``.
Receiver = Callable[[str, Any], Any]
R = TypeVar("R", bound=Callable[..., Any])
Natives = tuple[NamedSignal, ...]

# Resolved receiver lists are cached per event name; past this many names the cache
# starts afresh, so a program that fires ever-new names cannot grow it without bound.
_CACHE_LIMIT = 4096

# The fire in progress on each thread: thread id -> (bus, event, outer frame). A dict
# keyed by thread id costs a third of a threading.local on the hot path.
_Frame = tuple[Any, str, Any]
_firing: dict[int, _Frame] = {}
# The same for fire_async, per task: tasks interleave on one thread.
_firing_async: contextvars.ContextVar[_Frame | None] = contextvars.ContextVar(
    "zevents_firing_async", default=None
)


def current_bus() -> Bus | None:
    """The bus firing right now (the innermost one) on this thread, or in this asyncio
    task, else ``None``."""
    frame = _firing.get(get_ident()) or _firing_async.get()
    return frame[0] if frame is not None else None


def is_async_receiver(receiver: Callable[..., Any]) -> bool:
    """Whether calling ``receiver`` makes a coroutine (``async def``, also as a method,
    a ``functools.partial`` or an object's ``__call__``)."""
    return inspect.iscoroutinefunction(receiver) or inspect.iscoroutinefunction(
        getattr(receiver, "__call__", None)  # noqa: B004 - an async __call__, not callable()
    )


def _refusal(event: str, receivers: list[Receiver]) -> Receiver:
    """What ``fire`` calls instead of an event's receivers when some are coroutine
    functions: it raises before any receiver runs."""
    names = ", ".join(_name(r) for r in receivers)

    def refuse(_event: str, _payload: Any) -> NoReturn:
        raise ReceiverError(
            f"{event!r} reaches async receiver(s) {names}: fire it with "
            f"'await bus.fire_async(...)' (bus.fire cannot await them)"
        )

    return refuse


class Subscription(NamedTuple):
    """One receiver of a bus and the pattern it listens to (see ``Bus.subscriptions``).

    Attributes:
        pattern: The event name or pattern.
        receiver: The receiver.
        is_async: Whether it is reached only by ``fire_async``.
        native: Connected by plain blinker code to ``bus.signal(pattern)``, not
            through ``listen`` (called blinker-style, after the bus receivers).
    """

    pattern: str
    receiver: Callable[..., Any]
    is_async: bool = False
    native: bool = False


def _name(receiver: Callable[..., Any]) -> str:
    return getattr(receiver, "__qualname__", None) or repr(receiver)


def _compile(pattern: str) -> re.Pattern[str] | None:
    if "*" not in pattern:
        return None
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate telling whether an event name matches ``pattern`` (``*`` = any run)."""
    regex = _compile(pattern)
    if regex is None:
        return lambda event: event == pattern
    return lambda event: regex.fullmatch(event) is not None


class Bus:
    """A local event bus.

    Each event name (and each pattern) has a blinker ``NamedSignal``; receivers
    registered through the bus are called as ``receiver(event, payload)``, in the order
    they were registered, and held strongly. Receivers that plain blinker code connects
    to ``bus.signal(name)`` are called after them, blinker-style, as
    ``receiver(event, payload=payload)``.

    The receivers of an event name are resolved once and cached, so the cost of a fire
    does not grow with the number of patterns that do not match it.

    Args:
        name: A label for logs and ``repr``.
    """

    def __init__(self, name: str = "bus") -> None:
        self.name = name
        self._namespace = Namespace()
        # (pattern, compiled regex or None, receiver, is async), in registration order
        self._entries: list[tuple[str, re.Pattern[str] | None, Receiver, bool]] = []
        # Per event name: what fire calls (a refusal in place of async receivers)...
        self._cache: dict[str, tuple[tuple[Receiver, ...], tuple[NamedSignal, ...]]] = {}
        # ...and the receivers with whether each is async, for fire_async and receivers().
        self._async_cache: dict[str, tuple[tuple[tuple[Receiver, bool], ...], Natives]] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<Bus {self.name!r} receivers={len(self._entries)}>"

    # --- registration -------------------------------------------------------------

    def signal(self, name: str) -> NamedSignal:
        """The blinker signal of event name (or pattern) ``name``.

        Plain blinker receivers connected to it are called on every matching fire as
        ``receiver(event, payload=payload)``.
        """
        existing = self._namespace.get(name)
        if existing is not None:
            return existing
        with self._lock:
            signal = self._namespace.signal(name)
            signal.receiver_connected.connect(self._invalidate, weak=False)
            signal.receiver_disconnected.connect(self._invalidate, weak=False)
            return signal

    def listen(self, pattern: str, receiver: Receiver) -> Receiver:
        """Call ``receiver(event, payload)`` for every event matching ``pattern``.

        Args:
            pattern: An event name, or a pattern where ``*`` matches any run of
                characters (``orders.*``, ``*.failed``, ``*``).
            receiver: Any callable; held strongly until ``forget``. An ``async def``
                receiver is reached only by ``fire_async``; ``fire`` refuses it.

        Returns:
            The receiver, so ``listen`` can be used inline.

        Raises:
            ConfigError: The pattern is empty or not a string.
            ReceiverError: The receiver is not callable.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"a pattern must be a non-empty string, not {pattern!r}")
        if not callable(receiver):
            raise ReceiverError(f"receiver {receiver!r} is not callable")
        entry = (pattern, _compile(pattern), receiver, is_async_receiver(receiver))
        with self._lock:
            self._entries.append(entry)
            self.signal(pattern).connect(receiver, weak=False)
            self._invalidate()
        return receiver

    def on(self, pattern: str) -> Callable[[R], R]:
        """Decorator form of ``listen``."""

        def decorator(receiver: R) -> R:
            self.listen(pattern, receiver)
            return receiver

        return decorator

    def forget(self, pattern: str, receiver: Receiver | None = None) -> None:
        """Remove ``receiver`` (or, when ``None``, every receiver) from ``pattern``.

        Receivers are compared by equality, so ``forget(name, obj.method)`` removes the
        bound method that ``listen(name, obj.method)`` registered.
        """
        with self._lock:
            keep = []
            for entry in self._entries:
                if entry[0] == pattern and (receiver is None or entry[2] == receiver):
                    signal = self._namespace.get(pattern)
                    if signal is not None:
                        signal.disconnect(entry[2])
                else:
                    keep.append(entry)
            self._entries = keep
            self._invalidate()

    def has_receivers(self, event: str) -> bool:
        """Whether firing ``event`` would call anything."""
        receivers, natives = self._resolve(event)
        return bool(receivers or natives)

    def receivers(self, event: str) -> list[Receiver]:
        """The bus receivers ``event`` would call, in order."""
        return [receiver for receiver, _ in self._resolve_async(event)[0]]

    def subscriptions(self) -> list[Subscription]:
        """Every receiver and the pattern it listens to: the bus receivers in the order
        they were registered, then those plain blinker code connected to its signals."""
        with self._lock:
            entries = list(self._entries)
            signals = list(self._namespace.items())
        found = [
            Subscription(pattern, receiver, is_async) for pattern, _, receiver, is_async in entries
        ]
        ours = {(pattern, id(receiver)) for pattern, _, receiver, _ in entries}
        for name, signal in signals:
            for receiver in signal.receivers_for(None):
                if (name, id(receiver)) not in ours:
                    found.append(Subscription(name, receiver, is_async_receiver(receiver), True))
        return found

    def _invalidate(self, *_args: Any, **_kwargs: Any) -> None:
        self._cache.clear()
        self._async_cache.clear()

    def _resolve(self, event: str) -> tuple[tuple[Receiver, ...], Natives]:
        cached = self._cache.get(event)
        if cached is not None:
            return cached
        with self._lock:
            matched, natives = self._resolve_async(event)
            refused = [receiver for receiver, is_async in matched if is_async]
            calls = tuple(receiver for receiver, _ in matched)
            if refused:
                calls = (_refusal(event, refused),)
            resolved = (calls, natives)
            self._cache[event] = resolved
            return resolved

    def _resolve_async(self, event: str) -> tuple[tuple[tuple[Receiver, bool], ...], Natives]:
        cached = self._async_cache.get(event)
        if cached is not None:
            return cached
        with self._lock:
            receivers = []
            ours: dict[str, set[int]] = {}
            for pattern, regex, receiver, is_async in self._entries:
                if pattern == event if regex is None else regex.fullmatch(event) is not None:
                    receivers.append((receiver, is_async))
                ours.setdefault(pattern, set()).add(id(receiver))
            # Signals that plain blinker code connected receivers to.
            natives = []
            for name, signal in self._namespace.items():
                if not signal.receivers:
                    continue
                if not matcher(name)(event):
                    continue
                if len(signal.receivers) > len(ours.get(name, ())):
                    natives.append(signal)
            resolved = (tuple(receivers), tuple(natives))
            if len(self._async_cache) >= _CACHE_LIMIT:
                self._invalidate()
            self._async_cache[event] = resolved
            return resolved

    # --- firing -------------------------------------------------------------------

    @property
    def firing(self) -> str | None:
        """The event this bus is firing right now (on this thread, or in this asyncio
        task), else ``None``."""
        for frame in (_firing.get(get_ident()), _firing_async.get()):
            while frame is not None:
                if frame[0] is self:
                    return frame[1]
                frame = frame[2]
        return None

    def fire(self, event: str, payload: Any = None) -> list[tuple[Receiver, Any]]:
        """Call every receiver whose pattern matches ``event``.

        Exceptions raised by a receiver propagate (later receivers do not run), as in
        blinker.

        Args:
            event: The event name.
            payload: Any object; it must be serializable if a listener forwards it.

        Returns:
            ``(receiver, return value)`` for each receiver called, in call order.

        Raises:
            ReceiverError: ``event`` reaches an ``async def`` receiver (raised before
                any receiver runs): use ``fire_async``.
        """
        cached = self._cache.get(event)
        receivers, natives = cached if cached is not None else self._resolve(event)
        tid = get_ident()
        outer = _firing.get(tid)
        _firing[tid] = (self, event, outer)
        try:
            results = []
            for receiver in receivers:
                results.append((receiver, receiver(event, payload)))
            if natives:
                results.extend(self._fire_natives(natives, event, payload))
            return results
        finally:
            if outer is None:
                del _firing[tid]
            else:
                _firing[tid] = outer

    async def fire_async(self, event: str, payload: Any = None) -> list[tuple[Receiver, Any]]:
        """Call every receiver whose pattern matches ``event``, awaiting the ``async def``
        ones (and any awaitable a receiver returns), one after the other in
        registration order, as ``fire`` does.

        Sync receivers run on the event loop: one that blocks holds up every task.

        Args:
            event: The event name.
            payload: Any object; it must be serializable if a listener forwards it.

        Returns:
            ``(receiver, result)`` for each receiver called, in call order; the result
            of an async receiver is what its coroutine returned.
        """
        cached = self._async_cache.get(event)
        receivers, natives = cached if cached is not None else self._resolve_async(event)
        reset = _firing_async.set((self, event, _firing_async.get()))
        try:
            results = []
            for receiver, is_async in receivers:
                result = receiver(event, payload)
                if is_async or (result is not None and inspect.isawaitable(result)):
                    result = await result
                results.append((receiver, result))
            if natives:
                for receiver in self._natives_of(natives, event):
                    result = receiver(event, payload=payload)
                    if inspect.isawaitable(result):
                        result = await result
                    results.append((receiver, result))
            return results
        finally:
            _firing_async.reset(reset)

    def _fire_natives(
        self, natives: Natives, event: str, payload: Any
    ) -> list[tuple[Receiver, Any]]:
        results: list[tuple[Receiver, Any]] = []
        for receiver in self._natives_of(natives, event):
            if is_async_receiver(receiver):
                _refusal(event, [receiver])(event, payload)
            results.append((receiver, receiver(event, payload=payload)))
        return results

    def _natives_of(self, natives: Natives, event: str) -> Iterator[Callable[..., Any]]:
        """The receivers plain blinker code connected to the signals ``natives``."""
        ours = {id(entry[2]) for entry in self._entries}
        for signal in natives:
            for receiver in list(signal.receivers_for(event)):
                if id(receiver) not in ours:
                    yield receiver


#: The module-level default bus (``zevents.bus``).
default_bus = Bus("default")
