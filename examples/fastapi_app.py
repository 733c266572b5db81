"""A FastAPI app that fires events to a zevents service and runs one beside the server.

Its request handlers send events from the event loop without blocking it:
``POST /orders`` sends ``orders.created`` confirmed (the response says whether the
service's receivers ran), ``DELETE /orders/{id}`` sends ``orders.cancelled`` confirmed,
and ``POST /orders/{id}/viewed`` fires ``orders.viewed`` on the app's bus, where a plain
listener forwards it. The lifespan runs an async ``EventService`` (the app's inbox:
``GET /inbox`` lists what other processes sent it) beside the web server, in
``BACKGROUND``, and stops it, drained, when the server shuts down.

Run the orders service of examples/orders_service.py, then the app:

    python examples/orders_service.py &
    uvicorn --app-dir examples fastapi_app:app
    curl -X POST localhost:8000/orders -H 'content-type: application/json' -d '{"id": 1}'
    zevents emit -e ipc:///tmp/zevents-app-inbox.sock --confirmed stock.changed '{"sku": "A"}'
    curl localhost:8000/inbox

Endpoints come from the environment: ``ORDERS_ENDPOINT`` (default
``ipc:///tmp/zevents-orders.sock``) and ``INBOX_ENDPOINT`` (default
``ipc:///tmp/zevents-app-inbox.sock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any, Protocol

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from zevents import Bus, DeliveryError, DeliveryTimeout, RemoteError
from zevents.aio import EventListener, EventService

ORDERS = os.environ.get("ORDERS_ENDPOINT", "ipc:///tmp/zevents-orders.sock")
INBOX = os.environ.get("INBOX_ENDPOINT", "ipc:///tmp/zevents-app-inbox.sock")

bus = Bus("web")

# Confirmed: each send waits (without blocking the loop) until the service's receivers
# ran, up to rcvtimeo. Plain: a DEALER that the same ROUTER of the service takes.
orders = EventListener(connect=ORDERS, confirmed=True, rcvtimeo=3000)
notifier = EventListener(connect=ORDERS, socket_type="dealer")
bus.listen("orders.viewed", notifier)

# The inbox: events other processes send to this app, fired on a bus of their own.
inbox: list[dict[str, Any]] = []
inbox_bus = Bus("inbox")
inbox_service = EventService(inbox_bus).listen({"bind": INBOX, "confirmed": True})
# The web server owns SIGINT and SIGTERM; the lifespan stops the service.
inbox_service.listen_to_signals(signals=(), ignore=())


@inbox_bus.on("stock.*")
async def remember(event: str, payload: Any) -> None:
    inbox.append({"event": event, "payload": payload})


class Background(Protocol):
    """Something the lifespan runs beside the web server: an ``EventService``, or an
    async Redis ``Worker``."""

    @property
    def is_running(self) -> bool: ...

    async def run(self) -> None: ...

    def stop(self) -> None: ...


#: Run while the app serves: started in order, stopped (and awaited: each drains) at
#: shutdown. Add an async Redis worker here to consume a queue beside the server.
BACKGROUND: list[Background] = [inbox_service]


async def _started(parts: list[Background], tasks: list[asyncio.Task[None]]) -> None:
    """Wait until every part runs; raise the error of one that could not start."""
    deadline = asyncio.get_running_loop().time() + 10
    while not all(part.is_running for part in parts):
        for task in tasks:
            if task.done():
                task.result()  # raises what ended it
                raise RuntimeError(f"{task.get_name()} ended at start")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the background parts did not start within 10 s")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(part.run()) for part in BACKGROUND]
    try:
        await _started(BACKGROUND, tasks)
        yield
    finally:
        for part in reversed(BACKGROUND):
            part.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await orders.aclose()
        await notifier.aclose()


app = FastAPI(title="zevents + FastAPI", lifespan=lifespan)


class Order(BaseModel):
    id: int
    total: float = 0.0


async def _send_confirmed(event: str, payload: Any) -> None:
    """Send confirmed; a failure becomes the HTTP error that says what happened."""
    try:
        await orders.send(event, payload)
    except RemoteError as exc:
        raise HTTPException(502, f"the orders service failed: {exc}") from exc
    except DeliveryTimeout as exc:
        raise HTTPException(504, f"no answer from the orders service: {exc}") from exc
    except DeliveryError as exc:
        raise HTTPException(503, f"could not reach the orders service: {exc}") from exc


@app.post("/orders", status_code=201)
async def create_order(order: Order) -> dict[str, Any]:
    await _send_confirmed("orders.created", order.model_dump())
    return {"order": order.id, "confirmed": True}


@app.delete("/orders/{order_id}")
async def cancel_order(order_id: int) -> dict[str, Any]:
    await _send_confirmed("orders.cancelled", {"id": order_id})
    return {"order": order_id, "cancelled": True}


@app.post("/orders/{order_id}/viewed", status_code=202)
async def order_viewed(order_id: int) -> dict[str, Any]:
    # Fire and forget: a failure fires zevents.push.error on the bus, never raises here.
    results = await bus.fire_async("orders.viewed", {"id": order_id})
    return {"order": order_id, "sent": all(sent for _, sent in results)}


@app.get("/inbox")
async def read_inbox() -> list[dict[str, Any]]:
    return inbox


@app.get("/health")
async def health() -> dict[str, Any]:
    return {"ok": all(part.is_running for part in BACKGROUND)}
