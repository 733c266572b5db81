"""Workers killed with SIGKILL in the middle of a receiver, again and again."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import Figures, Log, Workers
from zevents.redis import RedisQueue, RedisServer

pytestmark = pytest.mark.faults

MESSAGES = 10_000
KILLS = 20
#: Every 500th message is slow on its first attempt: a worker is killed in it.
SLOW = set(range(250, MESSAGES, MESSAGES // KILLS))


def kill_the_slow_ones(workers: Workers, log: Log, deadline: float) -> int:
    """Kill each worker found in a slow receiver, start another; the kills made."""
    killed: set[int] = set()
    while len(killed) < KILLS:
        assert time.monotonic() < deadline, f"only {len(killed)} kills before the deadline"
        for i, pid, attempt, _ in log.read().started:
            if i in SLOW and attempt == 1 and i not in killed:
                workers.kill(pid)
                killed.add(i)
                workers.start()
        time.sleep(0.01)
    return len(killed)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("driver", ["list", "stream"])
def test_workers_killed_20_times_mid_receiver_handle_every_message_and_leave_none_behind(
    redis_server: RedisServer,
    workers: Callable[..., Workers],
    tmp_path: Path,
    figures: Figures,
    driver: str,
) -> None:
    name = f"kills-{driver}"
    with RedisQueue(name, redis_server.url, driver=driver) as queue:
        queue.send_many(
            [("job.run", {"i": i, "slow": 30 if i in SLOW else 0}) for i in range(MESSAGES)]
        )
        log = Log(tmp_path / "handled.log")
        group = workers(redis_server.url, name, driver, log.path)
        group.start()
        group.start()
        deadline = time.monotonic() + 120
        kills = kill_the_slow_ones(group, log, deadline)
        while len(log.handled()) < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.05)
        while queue.stats()["processing"] and time.monotonic() < deadline:
            time.sleep(0.05)
        handled = Counter(i for i, _, _ in log.read().done)
        stats = queue.stats()
        failed = queue.failed()
    lost = MESSAGES - len(handled)
    figures(
        f"worker SIGKILL x{kills} ({driver}): sent {MESSAGES:,}, handled {len(handled):,} "
        f"(+{sum(handled.values()) - len(handled)} again), failed {len(failed)}, "
        f"in processing {stats['processing']}, lost {lost}"
    )
    assert kills == KILLS
    assert set(handled) == set(range(MESSAGES))
    assert sum(stats["ready"].values()) == 0
    assert stats["processing"] == 0
    assert failed == []
