"""SIGTERM while a receiver runs: it finishes, then the process exits 0, promptly."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import Figures, Log, Workers
from tests.helpers import ServiceProcess, wait_for
from zevents import EventListener
from zevents.redis import RedisQueue, RedisServer

pytestmark = pytest.mark.faults

RECEIVER_SECONDS = 2.0
#: What guarantees.md promises: once the receiver in hand returns, the process is gone
#: within this (a service may also spend up to drain_timeout on what it had received).
EXIT_AFTER_RECEIVER = 2.0


@pytest.mark.timeout(60)
def test_sigterm_during_a_long_receiver_of_a_service_lets_it_finish_and_confirm(
    short_tmp: Path, figures: Figures
) -> None:
    endpoint = f"ipc://{short_tmp}/slow.sock"
    drain = 1.0
    service = ServiceProcess(
        short_tmp, {"bind": endpoint, "confirmed": True}, slow=["slow.*"], drain_timeout=drain
    ).wait_ready()
    outcome: list[BaseException | None] = []

    def send() -> None:
        with EventListener(connect=endpoint, confirmed=True, rcvtimeo=15_000) as listener:
            try:
                listener.send("slow.job", {"seconds": RECEIVER_SECONDS})
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

    sender = threading.Thread(target=send)
    try:
        sender.start()
        service.wait_events("slow.job")  # recorded as its slow receiver starts
        seen = time.monotonic()
        service.send_signal(signal.SIGTERM)
        code = service.wait_exit(RECEIVER_SECONDS + drain + EXIT_AFTER_RECEIVER + 5)
        took = time.monotonic() - seen
        sender.join(15)
    finally:
        service.stop()
    figures(
        f"service SIGTERM in a {RECEIVER_SECONDS:g} s receiver: confirmed "
        f"{outcome == [None]}, exit {code}, {took:.2f} s from the signal"
    )
    assert outcome == [None], "the sender got no confirmation: the receiver did not finish"
    assert code == 0
    assert service.events("child.exited")  # run() returned: a clean stop
    assert took < RECEIVER_SECONDS + drain + EXIT_AFTER_RECEIVER


@pytest.mark.timeout(60)
@pytest.mark.parametrize("driver", ["list", "stream"])
def test_sigterm_during_a_long_receiver_of_a_worker_lets_it_finish_and_gives_back_the_rest(
    redis_server: RedisServer,
    workers: Callable[..., Workers],
    tmp_path: Path,
    figures: Figures,
    driver: str,
) -> None:
    name = f"sigterm-{driver}"
    with RedisQueue(name, redis_server.url, driver=driver) as queue:
        queue.send("job.long", {"i": 0, "slow": RECEIVER_SECONDS})
        queue.send("job.next", {"i": 1})
        log = Log(tmp_path / "handled.log")
        proc = workers(redis_server.url, name, driver, log.path).start(keep_alive=30)
        wait_for(lambda: log.read().started, 15, what="the long receiver to start")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(RECEIVER_SECONDS + EXIT_AFTER_RECEIVER + 5)
        ended = time.time()
        stats = queue.stats()
    done = {i: at for i, _, at in log.read().done}
    figures(
        f"worker SIGTERM in a {RECEIVER_SECONDS:g} s receiver ({driver}): finished "
        f"{0 in done}, exit {code}, {ended - done.get(0, ended):.2f} s after the receiver "
        f"returned, given back {sum(stats['ready'].values())}"
    )
    assert 0 in done, "the receiver in hand did not finish"
    assert code == 0
    assert ended - done[0] < EXIT_AFTER_RECEIVER
    assert stats["processing"] == 0 or driver == "stream"
    # the message taken with it but not started is back in the queue, or was done
    assert 1 in done or sum(stats["ready"].values()) + stats["processing"] == 1
