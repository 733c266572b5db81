"""``zevents.aio.EventService``: against ``zevents emit --confirmed`` and a sync sender in
other processes, signals, drain, cancellation, idle and error events."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ServiceProcess, child_env, wait_for
from zevents import Bus, EventListener, RemoteError, events
from zevents.aio import EventListener as AsyncEventListener
from zevents.aio import EventService

ASYNC_CHILD = Path(__file__).resolve().parent / "serve_async.py"


class AsyncServiceProcess(ServiceProcess):
    """A child running an asyncio service (serve_async.py), read like ``ServiceProcess``."""

    def __init__(self, tmp: Path, *listen: dict[str, Any], **options: Any) -> None:
        self.cwd = None
        self.out = tmp / f"events-{id(self)}.jsonl"
        self.ready = tmp / f"ready-{id(self)}"
        args = [sys.executable, str(ASYNC_CHILD), "--out", str(self.out)]
        args += ["--ready", str(self.ready)]
        for item in listen:
            args += ["--listen", json.dumps(item)]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(
            args, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )


async def _emit(endpoint: str, event: str, payload: str) -> tuple[int, str]:
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "zevents", "emit", "-e", endpoint, "--confirmed"),
        *("--timeout", "10", event, payload),
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(child.communicate(), 30)
    assert child.returncode is not None
    return child.returncode, err.decode()


def test_an_async_service_confirms_what_zevents_emit_confirmed_sends(short_tmp: Path) -> None:
    endpoint = f"ipc://{short_tmp}/emit.sock"
    bus = Bus("service")
    seen: list[Any] = []

    async def created(event: str, payload: Any) -> None:
        await asyncio.sleep(0)
        seen.append(payload)

    async def refuse(event: str, payload: Any) -> None:
        raise ValueError("no such order")

    bus.listen("orders.created", created)
    bus.listen("orders.refused", refuse)

    async def main() -> tuple[tuple[int, str], tuple[int, str]]:
        service = EventService(bus).listen({"bind": endpoint, "confirmed": True})
        run = asyncio.create_task(service.run())
        try:
            return await asyncio.gather(
                _emit(endpoint, "orders.created", '{"id": 1}'),
                _emit(endpoint, "orders.refused", '{"id": 2}'),
            )
        finally:
            service.stop()
            await run

    (ok, ok_err), (refused, refused_err) = asyncio.run(main())
    assert (ok, refused) == (0, 1), (ok_err, refused_err)
    assert seen == [{"id": 1}]
    assert "ValueError: no such order" in refused_err


def test_an_async_service_process_drains_and_stops_on_sigterm(short_tmp: Path) -> None:
    """A sync confirmed sender and a sync plain one; SIGTERM while an async receiver
    sleeps: the events already received are handled, then the process exits 0."""
    confirmed = f"ipc://{short_tmp}/confirmed.sock"
    plain = f"ipc://{short_tmp}/plain.sock"
    service = AsyncServiceProcess(
        short_tmp, {"bind": confirmed, "confirmed": True}, {"bind": plain}, slow="slow"
    )
    try:
        service.wait_ready()
        with EventListener(connect=confirmed, confirmed=True, rcvtimeo=10_000) as sender:
            sender.send("hello", {"n": 1})  # answered by the async service
        with EventListener(connect=plain, sndtimeo=5000) as pusher:
            pusher.send("slow", {"seconds": 0.5})
            for i in range(20):
                pusher.send("tick", i)
            service.wait_events("slow")  # the async receiver is asleep now
            service.send_signal(signal.SIGTERM)
            assert service.wait_exit(10) == 0
    finally:
        service.stop()
    names = [row["event"] for row in service.events()]
    assert names[0] == "hello"
    assert [row["payload"] for row in service.events("tick")] == list(range(20))
    assert names[-1] == "child.exited"


def test_cancelling_run_closes_the_sockets_and_raises_cancelled_error(short_tmp: Path) -> None:
    endpoint = f"ipc://{short_tmp}/cancel.sock"

    async def main() -> EventService:
        service = EventService(Bus("cancel")).listen({"bind": endpoint})
        run = asyncio.create_task(service.run())
        await asyncio.to_thread(wait_for, lambda: service.is_running, 5)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        return service

    service = asyncio.run(main())
    assert not service.is_running
    assert not service.listeners[0].is_open
    assert not (short_tmp / "cancel.sock").exists()
    again = asyncio.run(main())  # the endpoint is free: it binds again
    assert not again.is_running


def test_idle_error_and_a_remote_stop_event(short_tmp: Path) -> None:
    endpoint = f"ipc://{short_tmp}/events.sock"
    bus = Bus("service")
    fired: list[tuple[str, Any]] = []
    idle = asyncio.Event()

    async def record(event: str, payload: Any) -> None:
        fired.append((event, payload))
        if event == events.SERVICE_IDLE:
            idle.set()

    def fails(event: str, payload: Any) -> None:
        raise KeyError(payload)

    bus.listen("zevents.service.*", record)
    bus.listen("jobs.bad", fails)

    async def main() -> None:
        service = EventService(bus, poll_timeout=0.02).listen({"bind": endpoint, "confirmed": True})
        run = asyncio.create_task(service.run())
        async with AsyncEventListener(connect=endpoint, confirmed=True) as sender:
            await asyncio.wait_for(idle.wait(), 5)
            with pytest.raises(RemoteError, match="KeyError"):
                await sender.send("jobs.bad", "job-1")
            await sender.send(events.SERVICE_STOP)
        await asyncio.wait_for(run, 10)

    asyncio.run(main())
    errors = [payload for event, payload in fired if event == events.SERVICE_ERROR]
    assert [(e["event"], e["error_type"]) for e in errors] == [("jobs.bad", "KeyError")]
    idles = [payload for event, payload in fired if event == events.SERVICE_IDLE]
    assert idles[0]["idle_for"] >= 0.02
