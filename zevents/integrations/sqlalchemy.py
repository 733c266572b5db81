"""Model change events from SQLAlchemy: ``<model>.created``, ``.updated``, ``.deleted``.

Mark a mapped class with ``emit_events`` (or inherit ``EmitsEvents``) and every row the
ORM inserts, updates or deletes for it fires an event on a zevents ``Bus`` once its
transaction commits, never for one rolled back (a savepoint rolled back drops its own
changes' events). An ``EventListener`` or a ``RedisQueue`` listening on that bus
forwards them to other processes. The payloads are those of laravel-streamer's
Eloquent trait:

* ``created``: the primary key, ``fields`` (the columns set), ``before`` (each None)
  and ``after`` (each value);
* ``updated``: the primary key, and the changed ``fields`` with their ``before`` and
  ``after`` values (an update that changed nothing fires nothing);
* ``deleted``: the primary key and ``"deleted": True``.

The primary key is under its attribute's name (``{"id": 7, ...}``; each column of a
composite key under its own). Only changes made through the ORM's unit of work are
seen: bulk ``update()``/``delete()`` statements bypass it. Receivers are called with
``bus.fire`` in the thread that committed, after the commit. One that raises is logged
(an error, with the event name and traceback) and the others still run: ``commit()``
has succeeded by then, and an exception out of SQLAlchemy's ``after_commit`` would leave
the session unusable. An event is thus sent at most once per commit; for a guarantee
that it goes out whatever fails, write it in the same transaction (an outbox table)
instead. Needs the ``sqlalchemy`` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, overload

from zevents.errors import MissingExtraError
from zevents.eventbus import Bus

try:
    from sqlalchemy import event, inspect, select
    from sqlalchemy.orm import Mapper, Session, SessionTransaction
except ModuleNotFoundError as exc:  # pragma: no cover - the extra is installed in tests
    raise MissingExtraError(
        "zevents.integrations.sqlalchemy needs SQLAlchemy 2: pip install 'zevents[sqlalchemy]'"
    ) from exc

logger = logging.getLogger(__name__)

__all__ = ["EmitsEvents", "ModelEvents", "emit_events"]

M = TypeVar("M", bound=type)
_PENDING = "zevents.model_events"
_BEFORE = "zevents.before"


@dataclass(frozen=True)
class ModelEvents:
    """How a mapped class emits its events.

    Attributes:
        name: The event name base (``name.created``); default the class name in lower
            case.
        bus: The bus the events are fired on; None is ``zevents.default_bus``.
        exclude: Attributes left out of the payloads (a password hash, say).
    """

    name: str | None = None
    bus: Bus | None = None
    exclude: frozenset[str] = field(default_factory=frozenset)

    def event_name(self, model: type, action: str) -> str:
        """``<name>.<action>``."""
        return f"{self.name or model.__name__.lower()}.{action}"

    def target(self) -> Bus:
        """The bus to fire on."""
        if self.bus is not None:
            return self.bus
        from zevents.eventbus import default_bus

        return default_bus


_configured: dict[type, ModelEvents] = {}


class EmitsEvents:
    """A mixin for mapped classes: their changes fire events (see the module).

    Class attributes (each optional): ``__event_name__`` (the event name base),
    ``__event_bus__`` (the bus) and ``__event_exclude__`` (attributes left out).
    """

    __event_name__: ClassVar[str | None] = None
    __event_bus__: ClassVar[Bus | None] = None
    __event_exclude__: ClassVar[Iterable[str]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        config = ModelEvents(
            cls.__event_name__, cls.__event_bus__, frozenset(cls.__event_exclude__)
        )
        _watch(cls, config)


@overload
def emit_events(
    model: M, *, name: str | None = ..., bus: Bus | None = ..., exclude: Iterable[str] = ...
) -> M: ...


@overload
def emit_events(
    model: None = ...,
    *,
    name: str | None = ...,
    bus: Bus | None = ...,
    exclude: Iterable[str] = ...,
) -> Callable[[M], M]: ...


def emit_events(
    model: M | None = None,
    *,
    name: str | None = None,
    bus: Bus | None = None,
    exclude: Iterable[str] = (),
) -> M | Callable[[M], M]:
    """Make the mapped class ``model`` (and its subclasses) fire change events; also a
    class decorator (``@emit_events(name="orders")``).

    Args:
        model: The mapped class.
        name: The event name base (default the class name in lower case).
        bus: The bus to fire on (default ``zevents.default_bus``).
        exclude: Attributes left out of the payloads.

    Returns:
        ``model`` (or the decorator).
    """
    config = ModelEvents(name, bus, frozenset(exclude))

    def mark(cls: M) -> M:
        _watch(cls, config)
        return cls

    return mark if model is None else mark(model)


# --- recording during flush, firing after commit ---------------------------------------


def _watch(cls: type, config: ModelEvents) -> None:
    _configured[cls] = config
    if not _installed:
        _install()
    if any(base in _configured for base in cls.__mro__[1:]):
        return  # a base's listeners propagate to it (listening again would fire twice)
    event.listen(cls, "before_update", _load_unknown_before, propagate=True)
    for action, hook in (("created", "after_insert"), ("updated", "after_update")):
        event.listen(cls, hook, _recorder(action), propagate=True)
    event.listen(cls, "after_delete", _recorder("deleted"), propagate=True)


def _config_of(cls: type) -> ModelEvents | None:
    return next((_configured[c] for c in cls.__mro__ if c in _configured), None)


def _load_unknown_before(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    """Read the stored values of attributes set without being loaded (expired by a
    commit or a rollback), so ``updated`` can say what they were: one SELECT, only
    then."""
    state = inspect(target)
    unknown = [
        attr
        for attr in mapper.column_attrs
        if (history := state.attrs[attr.key].history).added and not history.deleted
    ]
    if not unknown or state.key is None:
        return
    columns = [attr.columns[0] for attr in unknown]
    where = [
        column == value for column, value in zip(mapper.primary_key, state.key[1], strict=True)
    ]
    row = connection.execute(select(*columns).where(*where)).one_or_none()
    if row is not None:
        state.info[_BEFORE] = {attr.key: value for attr, value in zip(unknown, row, strict=True)}


def _recorder(action: str) -> Callable[[Mapper[Any], Any, Any], None]:
    def record(mapper: Mapper[Any], _connection: Any, target: Any) -> None:
        config = _config_of(type(target))
        session = inspect(target).session
        if config is None or session is None:
            return
        payload = _payload(mapper, target, action, config.exclude)
        if payload is None:
            return
        # Owned by the savepoint in progress (or the transaction): its rollback drops it.
        owner = session.get_nested_transaction() or session.get_transaction()
        entry = (owner, config, config.event_name(type(target), action), payload)
        session.info.setdefault(_PENDING, []).append(entry)

    return record


def _payload(
    mapper: Mapper[Any], target: Any, action: str, exclude: frozenset[str]
) -> dict[str, Any] | None:
    """The event payload of one row (None: an update that changed nothing)."""
    key = dict(
        zip(
            (mapper.get_property_by_column(c).key for c in mapper.primary_key),
            mapper.primary_key_from_instance(target),
            strict=True,
        )
    )
    if action == "deleted":
        return {**key, "deleted": True}
    state = inspect(target)
    known = state.info.pop(_BEFORE, {})
    fields: list[str] = []
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attr in mapper.column_attrs:
        name = attr.key
        if name in exclude:
            continue
        if action == "created":
            if name not in state.dict:
                continue  # not loaded (a server default): nothing to tell
            old, new = None, state.dict[name]
        else:
            history = state.attrs[name].history
            if not history.has_changes():
                continue
            old = history.deleted[0] if history.deleted else known.get(name)
            new = history.added[0] if history.added else None
            if old == new:
                continue
        fields.append(name)
        before[name], after[name] = old, new
    if action == "updated" and not fields:
        return None
    return {**key, "fields": fields, "before": before, "after": after}


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def _rolled_back(session: Session, previous: SessionTransaction) -> None:
    """Drop the events of the transaction (or savepoint) rolled back, and of its own
    savepoints."""
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [entry for entry in pending if not _within(entry[0], previous)]


def _committed(session: Session) -> None:
    """Fire the events of the committed transaction, in the order of the changes (a
    savepoint released is no commit: its events wait for the transaction's)."""
    if session.in_nested_transaction():
        return
    for _, config, name, payload in session.info.pop(_PENDING, None) or ():
        try:
            config.target().fire(name, payload)
        except Exception:
            logger.exception("a receiver of %s raised (the change is committed)", name)


_installed: list[bool] = []


def _install() -> None:
    """Listen to every session's commits and rollbacks (once)."""
    event.listen(Session, "after_soft_rollback", _rolled_back)
    event.listen(Session, "after_commit", _committed)
    _installed.append(True)
