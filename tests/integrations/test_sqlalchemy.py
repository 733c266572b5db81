"""Model change events: after commit only, with the changed fields, on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, String, create_engine, delete
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from zevents.eventbus import Bus
from zevents.integrations.sqlalchemy import EmitsEvents, emit_events
from zevents.redis import RedisQueue, RedisServer

bus = Bus("models")


class Base(DeclarativeBase):
    pass


@emit_events(bus=bus)
class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    total: Mapped[int]
    status: Mapped[str] = mapped_column(String(20), default="new")


class Customer(EmitsEvents, Base):
    __tablename__ = "customers"
    __event_name__ = "crm.customer"
    __event_bus__ = bus
    __event_exclude__ = ("secret",)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    secret: Mapped[str] = mapped_column(String(50), default="x")


class Line(Base):  # not marked: fires nothing
    __tablename__ = "lines"
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)


Seen = list[tuple[str, Any]]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shop.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def seen() -> Iterator[Seen]:
    events: Seen = []

    def record(event: str, payload: Any) -> None:
        events.append((event, payload))

    bus.listen("*", record)
    yield events
    bus.forget("*", record)


def test_created_updated_and_deleted_fire_after_each_commit(engine: Engine, seen: Seen) -> None:
    with Session(engine) as session:
        order = Order(total=10)
        session.add(order)
        session.flush()
        assert seen == []  # flushed, not committed
        session.commit()
        order_id = order.id
        assert seen == [
            (
                "order.created",
                {
                    "id": order_id,
                    "fields": ["id", "total", "status"],
                    "before": {"id": None, "total": None, "status": None},
                    "after": {"id": order_id, "total": 10, "status": "new"},
                },
            )
        ]
        seen.clear()
        order.total = 12
        order.status = "new"  # set to what it was: no change
        session.commit()
        assert seen == [
            (
                "order.updated",
                {
                    "id": order_id,
                    "fields": ["total"],
                    "before": {"total": 10},
                    "after": {"total": 12},
                },
            )
        ]
        seen.clear()
        session.add(Line(order_id=order_id, number=1))  # a model not marked: no event
        session.commit()
        assert seen == []
        session.execute(delete(Line))
        session.delete(order)
        session.commit()
        assert seen == [("order.deleted", {"id": order_id, "deleted": True})]


def test_a_rolled_back_transaction_fires_nothing(engine: Engine, seen: Seen) -> None:
    with Session(engine) as session:
        session.add(Order(total=1))
        session.flush()
        session.rollback()
        order = Order(total=2)
        session.add(order)
        session.commit()
        order.total = 3
        session.flush()
        session.rollback()
    assert [(e, p["after"]["total"]) for e, p in seen] == [("order.created", 2)]


def test_a_savepoint_rolled_back_drops_only_its_own_changes(engine: Engine, seen: Seen) -> None:
    with Session(engine) as session:
        session.add(Order(total=1))
        with session.begin_nested() as savepoint:
            session.add(Order(total=2))
            session.flush()
            savepoint.rollback()
        with session.begin_nested():
            session.add(Order(total=3))
        assert seen == []
        session.commit()
    assert [p["after"]["total"] for _, p in seen] == [1, 3]


def test_the_name_base_and_excluded_fields_are_per_model(engine: Engine, seen: Seen) -> None:
    with Session(engine) as session:
        customer = Customer(name="Ada", secret="s3cret")
        session.add(customer)
        session.commit()
        customer.secret = "other"  # excluded: no event
        session.commit()
        customer.name = "Ada L."
        session.commit()
    assert [event for event, _ in seen] == ["crm.customer.created", "crm.customer.updated"]
    assert "secret" not in seen[0][1]["after"]
    assert seen[1][1]["after"] == {"name": "Ada L."}


def test_a_redis_queue_on_the_bus_stores_the_events(engine: Engine, tmp_path: Path) -> None:
    with RedisServer() as server, RedisQueue("models", server.url) as queue:
        bus.listen("order.*", queue)
        try:
            with Session(engine) as session:
                session.add(Order(total=5))
                session.commit()
        finally:
            bus.forget("order.*", queue)
        consumer = queue.consumer()
        message = consumer.decode(consumer.take(1)[0])
    assert message.event == "order.created"
    assert message.payload["after"]["total"] == 5


def test_a_receiver_that_raises_is_logged_and_the_others_still_run(
    engine: Engine, seen: Seen, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: str, payload: Any) -> None:
        raise RuntimeError("receiver down")

    bus.listen("order.created", broken)
    try:
        with Session(engine) as session:
            session.add_all([Order(total=1), Order(total=2)])
            session.commit()
            assert session.query(Order).count() == 2  # committed, and the session works
    finally:
        bus.forget("order.created", broken)
    assert [p["after"]["total"] for _, p in seen] == [1, 2]
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [r.getMessage() for r in errors] == [
        "a receiver of order.created raised (the change is committed)"
    ] * 2


def test_updated_tells_the_stored_value_of_an_attribute_set_without_loading_it(
    engine: Engine, seen: Seen
) -> None:
    with Session(engine) as session:
        order = Order(total=30)
        session.add(order)
        session.commit()  # expires every attribute
        order.total = 40  # set without loading the stored 30
        session.commit()
    assert seen[-1] == (
        "order.updated",
        {"id": 1, "fields": ["total"], "before": {"total": 30}, "after": {"total": 40}},
    )
