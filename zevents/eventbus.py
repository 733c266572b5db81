"""The local signal bus: named events over blinker signals, with ``*`` patterns."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from threading import get_ident
from typing import Any, TypeVar

from blinker import NamedSignal, Namespace

from zevents.errors import ConfigError, ReceiverError

__all__ = ["Bus", "Receiver", "current_bus", "matcher"]

#: A bus receiver: called as ``receiver(event, payload)``.
Receiver = Callable[[str, Any], Any]
R = TypeVar("R", bound=Callable[..., Any])

# Resolved receiver lists are cached per event name; past this many names the cache
# starts afresh, so a program that fires ever-new names cannot grow it without bound.
_CACHE_LIMIT = 4096

# The fire in progress on each thread: thread id -> (bus, event, outer frame). A dict
# keyed by thread id costs a third of a threading.local on the hot path.
_Frame = tuple[Any, str, Any]
_firing: dict[int, _Frame] = {}


def current_bus() -> Bus | None:
    """The bus firing on this thread right now (the innermost one), else ``None``."""
    frame = _firing.get(get_ident())
    return frame[0] if frame is not None else None


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
        # (pattern, compiled regex or None, receiver), in registration order
        self._entries: list[tuple[str, re.Pattern[str] | None, Receiver]] = []
        self._cache: dict[str, tuple[tuple[Receiver, ...], tuple[NamedSignal, ...]]] = {}
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
            receiver: Any callable; held strongly until ``forget``.

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
        with self._lock:
            self._entries.append((pattern, _compile(pattern), receiver))
            self.signal(pattern).connect(receiver, weak=False)
            self._cache.clear()
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
            self._cache.clear()

    def has_receivers(self, event: str) -> bool:
        """Whether firing ``event`` would call anything."""
        receivers, natives = self._resolve(event)
        return bool(receivers or natives)

    def receivers(self, event: str) -> list[Receiver]:
        """The bus receivers ``event`` would call, in order."""
        return list(self._resolve(event)[0])

    def _invalidate(self, *_args: Any, **_kwargs: Any) -> None:
        self._cache.clear()

    def _resolve(self, event: str) -> tuple[tuple[Receiver, ...], tuple[NamedSignal, ...]]:
        cached = self._cache.get(event)
        if cached is not None:
            return cached
        with self._lock:
            receivers = []
            ours: dict[str, set[int]] = {}
            matched: dict[str, None] = {}
            for pattern, regex, receiver in self._entries:
                if pattern == event if regex is None else regex.fullmatch(event) is not None:
                    receivers.append(receiver)
                    matched[pattern] = None
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
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[event] = resolved
            return resolved

    # --- firing -------------------------------------------------------------------

    @property
    def firing(self) -> str | None:
        """The event this bus is firing on this thread right now, else ``None``."""
        frame = _firing.get(get_ident())
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

    def _fire_natives(
        self, natives: tuple[NamedSignal, ...], event: str, payload: Any
    ) -> list[tuple[Receiver, Any]]:
        ours = {id(entry[2]) for entry in self._entries}
        results: list[tuple[Receiver, Any]] = []
        for signal in natives:
            for receiver in list(signal.receivers_for(event)):
                if id(receiver) in ours:
                    continue
                results.append((receiver, receiver(event, payload=payload)))
        return results


#: The module-level default bus (``zevents.bus``).
default_bus = Bus("default")
