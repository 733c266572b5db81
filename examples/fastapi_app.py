"""A FastAPI app that fires events to a zevents service and runs one beside the server.

Its request handlers send events from the event loop without blocking it:
``POST /orders`` sends ``orders.created`` confirmed (the response says whether the
service's receivers ran), ``DELETE /orders/{id}`` sends ``orders.cancelled`` confirmed,
``POST /orders/{id}/viewed`` fires ``orders.viewed`` on the app's bus, where a plain
listener forwards it, and ``POST /orders/{id}/receipt`` puts a ``receipts.send`` job into
a durable Redis queue. The lifespan runs, beside the web server, an async
``EventService`` (the app's inbox: ``GET /inbox`` lists what other processes sent it)
and an async Redis ``Worker`` working that queue four jobs at a time (``GET /receipts``
lists the jobs done), and stops both, drained, when the server shuts down.

Run the orders service of examples/orders_service.py, then the app:

    python examples/orders_service.py &
    uvicorn --app-dir examples fastapi_app:app
    curl -X POST localhost:8000/orders -H 'content-type: application/json' -d '{"id": 1}'
    zevents emit -e ipc:///tmp/zevents-app-inbox.sock --confirmed stock.changed '{"sku": "A"}'
    curl localhost:8000/inbox
    curl -X POST localhost:8000/orders/1/receipt && curl localhost:8000/receipts

Endpoints come from the environment: ``ORDERS_ENDPOINT`` (default
``ipc:///tmp/zevents-orders.sock``) and ``INBOX_ENDPOINT`` (default
``ipc:///tmp/zevents-app-inbox.sock``); the queue is ``JOBS_QUEUE`` (default
``app-jobs``) on the Redis of ``ZEVENTS_REDIS_URL``, else the embedded one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from zevents import Bus, DeliveryError, DeliveryTimeout, RemoteError
from zevents.aio import EventListener, EventService
from zevents.aio.redis import RedisQueue, Worker

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


# Durable jobs: a queue on Redis, and an async worker that runs up to four at a time.
jobs = RedisQueue(os.environ.get("JOBS_QUEUE", "app-jobs"))
jobs_bus = Bus("jobs")
receipts: list[int] = []


@jobs_bus.on("receipts.send")
async def send_receipt(event: str, payload: Any) -> None:
    await asyncio.sleep(0.01)  # a mail server's round trip
    receipts.append(payload["id"])


worker = Worker(jobs, jobs_bus, concurrency=4)

#: The lifespan's tasks, while the app serves.
running: dict[str, asyncio.Task[Any]] = {}


async def _started() -> None:
    """Wait until the service receives; raise the error of a task that ended at start."""
    deadline = asyncio.get_running_loop().time() + 10
    while not inbox_service.is_running:
        for task in running.values():
            if task.done():
                task.result()  # raises what ended it
                raise RuntimeError(f"{task.get_name()} ended at start")
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the inbox service did not start within 10 s")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    running["inbox"] = asyncio.create_task(inbox_service.run(), name="inbox service")
    # handle_signals=False: SIGINT and SIGTERM are the web server's; stop() comes below
    running["worker"] = asyncio.create_task(worker.run(handle_signals=False), name="worker")
    try:
        await _started()
        yield
    finally:
        inbox_service.stop()
        worker.stop()  # the jobs in flight finish first
        await asyncio.gather(*running.values(), return_exceptions=True)
        running.clear()
        await orders.aclose()
        await notifier.aclose()
        await jobs.aclose()


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


@app.post("/orders/{order_id}/receipt", status_code=202)
async def queue_receipt(order_id: int) -> dict[str, Any]:
    # Stored in Redis when this returns: the worker sends it even if the app restarts.
    message_id = await jobs.send("receipts.send", {"id": order_id})
    return {"order": order_id, "queued": message_id}


@app.get("/receipts")
async def read_receipts() -> list[int]:
    return receipts


@app.get("/inbox")
async def read_inbox() -> list[dict[str, Any]]:
    return inbox


@app.get("/health")
async def health() -> dict[str, Any]:
    working = bool(running) and not any(task.done() for task in running.values())
    return {"ok": inbox_service.is_running and working}
