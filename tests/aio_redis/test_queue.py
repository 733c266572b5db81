"""The asyncio RedisQueue: the sync queue's options, storage and errors, awaited."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import redis

from tests.aio_redis.conftest import DRIVERS, run, wait_for
from tests.helpers import child_env, command_calls
from zevents.aio.redis import RedisQueue
from zevents.errors import ConfigError, QueueNotFound, QueueUnavailable, ReplicationError
from zevents.eventbus import Bus
from zevents.redis import RedisQueue as SyncQueue


def test_bad_options_raise_config_errors_before_any_io() -> None:
    unreachable = "redis://127.0.0.1:1/0"
    with pytest.raises(ConfigError) as caught:
        RedisQueue("jobs", unreachable, driver="heap")
    assert caught.value.option == "driver"
    with pytest.raises(ConfigError) as caught:
        RedisQueue("jobs", "redis://127.0.0.1:1/abc")
    assert caught.value.option == "url"
    with pytest.raises(ConfigError) as caught:
        RedisQueue("jo{bs}", unreachable)
    assert caught.value.option == "name"
    with pytest.raises(ConfigError) as caught:
        RedisQueue("jobs", unreachable, priorities=[1, 2], default_priority=3)
    assert caught.value.option == "default_priority"
    with pytest.raises(ConfigError) as caught:
        RedisQueue("jobs", unreachable, drivr="list")  # type: ignore[call-arg]
    assert caught.value.option == "drivr"


def test_an_unreachable_redis_raises_unavailable_with_the_url_masked() -> None:
    async def scenario() -> None:
        async with RedisQueue("jobs", "redis://:secret@127.0.0.1:1/0", socket_timeout=1) as q:
            await q.send("x")

    with pytest.raises(QueueUnavailable) as caught:
        run(scenario())
    assert "secret" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


@pytest.mark.parametrize("driver", DRIVERS)
def test_what_an_async_queue_sends_a_sync_queue_reads_and_the_reverse(
    url: str, driver: str
) -> None:
    async def scenario() -> tuple[list[str], dict[str, object]]:
        async with RedisQueue("jobs", url, driver=driver, priorities=[0, 5]) as queue:
            ids = [await queue.send("a", {"n": 1}, priority=5)]
            ids += await queue.send_many([("b", {"n": 2}), {"event": "c", "priority": 0}])
            with SyncQueue("jobs", url) as sync:  # opens it as recorded
                assert (sync.driver_name, sync.priorities) == (driver, (5, 0))
                ids.append(sync.send("d", {"n": 4}))
            return ids, await queue.stats()

    ids, stats = run(scenario())
    assert len(set(ids)) == 4
    assert stats["ready"] == {5: 1, 0: 3}
    with SyncQueue("jobs", url) as sync:
        consumer = sync.consumer()
        taken = consumer.take(10)
        events = [consumer.decode(t).event for t in taken]
    assert events[0] == "a"  # the higher level first
    if driver != "set":
        assert events == ["a", "b", "c", "d"]
    assert sorted(events) == ["a", "b", "c", "d"]


def test_a_queue_opened_with_another_driver_names_the_recorded_one(url: str) -> None:
    SyncQueue("jobs", url, driver="stream").send("x")

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver="list") as queue:
            await queue.send("x")

    with pytest.raises(ConfigError, match="stream queue") as caught:
        run(scenario())
    assert caught.value.option == "driver"


@pytest.mark.parametrize("driver", ["list", "stream"])
def test_concurrent_sends_each_get_their_id_and_keep_each_senders_order(
    url: str, driver: str
) -> None:
    async def scenario() -> list[str]:
        async with RedisQueue("jobs", url, driver=driver) as queue:

            async def sender(task: int) -> list[str]:
                return [await queue.send("x", {"task": task, "n": n}) for n in range(20)]

            batches = await asyncio.gather(*(sender(task) for task in range(32)))
            return [message_id for batch in batches for message_id in batch]

    ids = run(scenario())
    assert len(set(ids)) == 32 * 20
    with SyncQueue("jobs", url) as sync:
        consumer = sync.consumer()
        payloads = [consumer.decode(t).payload for t in consumer.take(1000)]
    assert len(payloads) == 32 * 20
    for task in range(32):
        assert [p["n"] for p in payloads if p["task"] == task] == list(range(20))


def test_a_script_call_cancelled_before_its_reply_leaves_no_stale_reply_behind(
    url: str,
) -> None:
    # Script calls go straight to a pooled connection: one cancelled while Redis holds
    # it (paused here) must not leave its reply to be read as the next call's.
    # send_many runs its call in the caller's task (send goes through a batcher task,
    # which the caller's cancellation does not reach).
    import redis

    admin = redis.Redis.from_url(url)

    async def scenario() -> list[str]:
        async with RedisQueue("jobs", url) as queue:
            await queue.send_many([("warm", 0), ("warm", 1)])  # scripts loaded, pooled
            admin.client_pause(1000)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(queue.send_many([("cancelled", 1), ("cancelled", 2)]), 0.1)
            return await queue.send_many([("next", 2), ("next", 3)])  # after the pause

    try:
        next_ids = run(scenario())
    finally:
        admin.close()
    with SyncQueue("jobs", url) as sync:
        consumer = sync.consumer()
        stored = {t.id: consumer.decode(t).event for t in consumer.take(10)}
    assert [stored[i] for i in next_ids] == ["next", "next"]


def test_stats_of_a_never_used_queue_raise_not_found_naming_the_known_ones(url: str) -> None:
    SyncQueue("known", url).send("x")

    async def scenario() -> None:
        async with RedisQueue("other", url) as queue:
            assert not await queue.exists()
            await queue.stats()

    with pytest.raises(QueueNotFound) as caught:
        run(scenario())
    assert (caught.value.name, caught.value.known) == ("other", ["known"])


def test_unique_sends_unfinished_and_delays(url: str) -> None:
    async def scenario() -> None:
        async with RedisQueue("jobs", url) as queue:
            first = await queue.send("x", identifier="order-1", unique=True)
            again = await queue.send("x", identifier="order-1", unique=True)
            assert again == first
            await queue.send("y", delay=60)
            assert await queue.unfinished(["order-1", "order-2"]) == {"order-1"}
            stats = await queue.stats()
            assert (stats["ready"], stats["delayed"]) == ({0: 1}, 1)
            with pytest.raises(ConfigError):
                await queue.check_send(priority=3)

    run(scenario())


def test_failed_store_is_listed_retried_and_flushed(url: str) -> None:
    with SyncQueue("jobs", url) as sync:
        sync.send("a", 1)
        sync.send("b", 2)
        consumer = sync.consumer()
        for taken in consumer.take(2):
            consumer.fail(taken, b'{"error": "E: no", "reason": "error"}')

    async def scenario() -> None:
        async with RedisQueue("jobs", url) as queue:
            failed = await queue.failed()
            assert [(f.event, f.payload, f.error) for f in failed] == [
                ("a", 1, "E: no"),
                ("b", 2, "E: no"),
            ]
            assert await queue.retry_failed(event="a") == 1
            assert (await queue.stats())["ready"] == {0: 1}
            assert await queue.flush_failed() == 1
            assert await queue.failed() == []

    run(scenario())


def test_a_queue_is_a_receiver_the_bus_awaits(url: str) -> None:
    async def scenario() -> int:
        async with RedisQueue("jobs", url) as queue:
            bus = Bus()
            bus.listen("orders.*", queue)
            for receiver in bus.receivers("orders.created"):
                await receiver("orders.created", {"id": 1})
            return int((await queue.stats())["ready"][0])

    assert run(scenario()) == 1


def test_a_named_connection_of_the_config_file_is_used(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "zevents.toml"
    config.write_text(f'[redis.jobs]\nurl = "{url}"\n')
    monkeypatch.setenv("ZEVENTS_CONFIG", str(config))
    monkeypatch.delenv("ZEVENTS_REDIS_URL", raising=False)

    async def scenario() -> str:
        async with RedisQueue("jobs", connection="jobs") as queue:
            return await queue.send("x")

    run(scenario())
    with pytest.raises(ConfigError) as caught:
        RedisQueue("jobs", connection="nowhere")
    assert caught.value.option == "redis"
    assert SyncQueue("jobs", url).stats()["ready"] == {0: 1}


def test_with_no_url_the_embedded_redis_starts_off_the_loop(tmp_path: Path) -> None:
    code = (
        "import asyncio\n"
        "from zevents.aio.redis import RedisQueue\n"
        "async def main():\n"
        "    async with RedisQueue('jobs') as queue:\n"
        "        await queue.send('x')\n"
        "        print((await queue.stats())['ready'], queue.url.startswith('unix://'))\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in child_env().items() if k not in ("ZEVENTS_REDIS_URL", "ZEVENTS_CONFIG")}
    env["ZEVENTS_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{0: 1} True"
    assert "started the embedded Redis" in done.stderr


def test_a_named_group_is_created_on_open_unless_create_group_is_false(url: str) -> None:
    """An inspecting reader (``create_group=False``) writes no group; one that names its
    group gets it when the queue opens, with every message still in the stream."""

    async def groups() -> set[str]:
        async with RedisQueue("audited", url) as queue:
            found = await queue.runner.client.xinfo_groups(queue.keys.ready(0))
            return {g["name"].decode() for g in found}

    async def scenario() -> tuple[set[str], set[str], int]:
        async with RedisQueue("audited", url, driver="stream") as queue:
            await queue.send_many([("x", n) for n in range(3)])
        async with RedisQueue("audited", url, group="audit", create_group=False):
            pass
        inspected = await groups()
        async with RedisQueue("audited", url, group="audit") as reader:
            taken = await (await reader.consumer()).take(10)
        return inspected, await groups(), len(taken)

    inspected, created, taken = run(scenario())
    assert inspected == {"default"}
    assert created == {"default", "audit"}
    assert taken == 3


def test_replication_is_asked_of_a_server_without_replicas_and_refused(url: str) -> None:
    """A single server has no replica: a send with ``min_replicas`` is stored but not
    confirmed (``ReplicationError``, within ``replica_timeout``); without it the master's
    word is enough."""

    async def scenario() -> tuple[int, int, dict[int, int]]:
        async with RedisQueue("repl", url, min_replicas=1, replica_timeout=0.1) as queue:
            with pytest.raises(ReplicationError) as raised:
                await queue.send("x", 1)
            batched = await asyncio.gather(
                *(queue.send("x", n) for n in range(5)), return_exceptions=True
            )
            assert all(isinstance(r, ReplicationError) for r in batched)
            assert await queue.send("x", 2, min_replicas=0)
            assert await queue.send_many([("x", 3)], min_replicas=0)
            return raised.value.acknowledged, raised.value.wanted, (await queue.stats())["ready"]

    assert run(scenario()) == (0, 1, {0: 8})


def test_each_send_of_a_failed_batch_raises_its_own_error(url: str) -> None:
    """Sends that shared a round trip share its failure, but not one exception object:
    raised in two tasks, one object would carry the first task's frames into the
    second's traceback."""
    admin = redis.Redis.from_url(url)

    def waits() -> int:
        return command_calls(admin, "wait")

    async def scenario() -> tuple[ReplicationError, ReplicationError, int]:
        async with RedisQueue("repl", url, min_replicas=1, replica_timeout=0.05) as queue:
            with pytest.raises(ReplicationError):
                await queue.send("x", 0)  # the queue prepared: the next two share a batch
            before = waits()

            async def first_sender() -> ReplicationError:
                with pytest.raises(ReplicationError) as raised:
                    await queue.send("x", 1)
                return raised.value

            async def second_sender() -> ReplicationError:
                with pytest.raises(ReplicationError) as raised:
                    await queue.send("x", 2)
                return raised.value

            first, second = await asyncio.gather(first_sender(), second_sender())
            return first, second, waits() - before

    try:
        first, second, batches = run(scenario())
    finally:
        admin.close()
    assert batches == 1  # one round trip, one WAIT, for both sends
    assert first is not second
    assert (type(first), str(first), first.acknowledged, first.wanted) == (
        type(second),
        str(second),
        second.acknowledged,
        second.wanted,
    )
    frames = {frame.name for frame in traceback.extract_tb(second.__traceback__)}
    assert "second_sender" in frames
    assert "first_sender" not in frames


def test_retry_failed_with_nothing_to_retry_waits_for_no_replica(url: str) -> None:
    async def scenario() -> tuple[int, int]:
        async with RedisQueue("nothing", url, min_replicas=1, replica_timeout=0.1) as queue:
            return await queue.retry_failed(), await queue.retry_failed(event="none.*")

    assert run(scenario()) == (0, 0)


@pytest.mark.skipif(
    sys.version_info < (3, 11, 3), reason="before 3.11.3 redis-py writes, a loop turn later"
)
def test_a_script_call_is_on_the_wire_before_the_loop_turns(url: str, raw: redis.Redis) -> None:
    """A worker's lane lets the dispatcher send the next take and goes on at the next
    loop turn: the take must have left by then, not a turn later (redis-py's own write
    runs in a task of its own on Python 3.11). Here the loop is held after one turn
    while the server is asked whether the call arrived."""

    async def scenario() -> None:
        async with RedisQueue("jobs", url, driver="list") as queue:
            await queue.send("warm", 0)  # a kept connection, connected
            consumer = await queue.consumer(lease=30.0)
            await consumer.take(1)
            before = command_calls(raw, "evalsha")
            take = asyncio.ensure_future(consumer.take(1))
            await asyncio.sleep(0)  # the take's task runs up to its first wait
            # the loop stays held here: only bytes already written can reach the server
            wait_for(lambda: command_calls(raw, "evalsha") > before, timeout=2, what="the take")
            assert await take == []

    run(scenario())
