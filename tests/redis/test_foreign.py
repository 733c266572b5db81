"""Producers in other languages, writing messages as docs/redis.md describes them: no
priority, the sorted-set score, the set driver's ids; and the published JSON Schema."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.redis.conftest import DRIVERS, Running, wait_for
from tests.redis.old_messages import entries, stored_ids
from zevents.errors import PermanentError
from zevents.eventbus import Bus
from zevents.redis import JsonLinesArchive, RedisQueue, RetryPolicy, current
from zevents.redis.message import content_id

MakeQueue = Callable[..., RedisQueue]
StartWorker = Callable[..., Running]
ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "redis.md").read_text()
SCHEMA_PATH = ROOT / "zevents" / "redis" / "message.schema.json"


def write_foreign(raw: redis.Redis, queue: RedisQueue, message_id: str, body: Any) -> None:
    """Enqueue at priority 5 as a producer following the docs does."""
    text = json.dumps(body)
    if queue.driver_name == "stream":
        raw.xadd(queue.keys.ready(5), {"i": message_id, "m": text})
        return
    raw.hset(queue.keys.key("msgs"), message_id, text)
    if queue.driver_name == "list":
        raw.rpush(queue.keys.ready(5), message_id)
    elif queue.driver_name == "sorted-set":
        raw.zadd(queue.keys.ready(5), {message_id: raw.incr(queue.keys.key("seq"))})
    else:
        raw.sadd(queue.keys.ready(5), message_id)


@pytest.mark.parametrize("path", ["retry", "reclaim", "retry_failed"])
@pytest.mark.parametrize("driver", DRIVERS)
def test_a_message_without_priority_goes_back_at_the_default_priority(
    make_queue: MakeQueue, start_worker: StartWorker, raw: redis.Redis, driver: str, path: str
) -> None:
    """Retried after a failed attempt, reclaimed from a dead worker, or put back by
    retry_failed: each time at the queue's default priority, never 'undeliverable'."""
    shape: dict[str, Any] = {"driver": driver, "priorities": [0, 5], "default_priority": 5}
    queue = make_queue("foreign", **shape)
    write_foreign(raw, queue, "ext-1", {"event": "foreign.job", "payload": {"n": 1}})
    if path == "reclaim":  # a worker takes it and dies
        dead = make_queue("foreign", **shape).consumer(lease=0.2)
        assert [t.id for t in dead.take(1)] == ["ext-1"]
    runs: list[tuple[int, int]] = []

    def job(event: str, payload: Any) -> None:
        runs.append((current().attempt, current().priority))
        if len(runs) == 1 and path == "retry":
            raise RuntimeError("first attempt fails")
        if len(runs) == 1 and path == "retry_failed":
            raise PermanentError("to the failed store")

    bus = Bus()
    bus.listen("foreign.*", job)
    start_worker(queue, bus, retry=RetryPolicy(base=0.05), keep_alive=0.5)
    if path == "retry_failed":
        wait_for(lambda: len(queue.failed()) == 1)
        assert queue.retry_failed() == 1
    expected = {"retry": [(1, 5), (2, 5)], "reclaim": [(2, 5)], "retry_failed": [(1, 5), (1, 5)]}
    wait_for(lambda: runs == expected[path], what=f"runs {expected[path]}, got {runs}")
    wait_for(lambda: queue.stats()["processing"] == 0)
    assert queue.failed() == []


def _zadd_as_documented(raw: redis.Redis, queue: RedisQueue, payload: str) -> str:
    """A foreign sorted-set send: the score from INCR of the queue's seq key, the id
    ``<ms>-<seq>``, body and score in one MULTI/EXEC."""
    seq = raw.incr(queue.keys.key("seq"))
    seconds, micros = raw.time()
    message_id = f"{int(seconds) * 1000 + int(micros) // 1000}-{seq}"
    body = json.dumps({"event": "job", "payload": payload, "priority": 0})
    with raw.pipeline(transaction=True) as pipe:
        pipe.hset(queue.keys.key("msgs"), message_id, body)
        pipe.zadd(queue.keys.ready(0), {message_id: seq})
        pipe.execute()
    return message_id


def test_a_foreign_zadd_scored_from_the_sequence_keeps_enqueue_order(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    queue = make_queue(driver="sorted-set")
    queue.send("job", "z1")
    _zadd_as_documented(raw, queue, "f1")
    queue.send("job", "z2")
    _zadd_as_documented(raw, queue, "f2")
    queue.send_many([("job", "z3"), ("job", "z4")])
    consumer = queue.consumer(lease=30.0)
    first, foreign = consumer.take(2)
    assert consumer.ack([first]) == []
    assert consumer.retry(foreign, 0)  # a retried foreign message keeps its place
    order = [consumer.decode(t).payload for t in consumer.take(10)]
    assert order == ["f1", "z2", "f2", "z3", "z4"]


def test_a_foreign_zadd_scored_by_a_timestamp_jumps_the_line(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    """Why the docs ask for the sequence: a millisecond score is far above any
    sequence number, so the message goes behind everything sent after it."""
    queue = make_queue(driver="sorted-set")
    raw.hset(queue.keys.key("msgs"), "php-1", json.dumps({"event": "job", "payload": "ms"}))
    raw.zadd(queue.keys.ready(0), {"php-1": 1_767_225_600_123})
    queue.send("job", "later")
    consumer = queue.consumer(lease=30.0)
    assert [consumer.decode(t).payload for t in consumer.take(10)] == ["later", "ms"]


def documented_content_id(event: str, payload: Any, identifier: str | None) -> str:
    """The set driver's id, computed as docs/redis.md states the rule (not by zevents)."""
    text = json.dumps(
        [event, payload, identifier], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


@pytest.mark.parametrize(
    ("event", "payload", "identifier"),
    [
        ("orders.created", {"id": 7, "total": 12.5, "tags": ["a", "b"]}, None),
        ("orders.created", {"z": 1, "a": {"y": None, "b": True}}, "order-7"),
        ("user.renamed", {"name": "Zoë / 東京"}, None),
        ("ping", None, None),
    ],
)
def test_the_documented_content_id_rule_is_the_set_drivers_own(
    event: str, payload: Any, identifier: str | None
) -> None:
    assert documented_content_id(event, payload, identifier) == content_id(
        event, payload, identifier
    )


def _doc_block(language: str) -> str:
    (block,) = re.findall(rf"```{language}\n(.*?)```", DOC, re.DOTALL)
    return str(block)


def test_a_foreign_set_producer_following_the_docs_never_queues_a_duplicate(
    make_queue: MakeQueue, raw: redis.Redis
) -> None:
    queue = make_queue(driver="set")
    script = _doc_block("lua")
    msgs, ready = queue.keys.key("msgs"), queue.keys.ready(0)

    def send_foreign(payload: Any) -> int:
        message_id = documented_content_id("orders.created", payload, None)
        body = json.dumps({"event": "orders.created", "payload": payload, "priority": 0})
        return int(raw.eval(script, 2, msgs, ready, message_id, body))

    assert send_foreign({"id": 7}) == 1
    assert send_foreign({"id": 7}) == 0
    zevents_id = queue.send("orders.created", {"id": 7})
    assert stored_ids(raw, queue) == {zevents_id}
    assert send_foreign({"id": 8}) == 1
    consumer = queue.consumer(lease=30.0)
    (taken,) = [t for t in consumer.take(10) if consumer.decode(t).payload == {"id": 7}]
    assert send_foreign({"id": 7}) == 0  # still processing: still one message
    assert consumer.ack([taken]) == []
    assert send_foreign({"id": 7}) == 1  # finished: the same content may come again
    stats = queue.stats()
    assert (stats["ready"], stats["processing"]) == ({0: 1}, 1)


# --- the published schema ----------------------------------------------------------

_KNOWN = {"type", "required", "properties", "additionalProperties", "minLength", "minimum"}
_KNOWN |= {"pattern", "$ref", "$defs", "$schema", "$id", "title", "description"}
_KNOWN |= {"contentMediaType", "contentSchema"}
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def _problems(schema: dict[str, Any], value: Any, root: dict[str, Any]) -> list[str]:
    """What the subset of JSON Schema the message schema uses finds wrong with ``value``
    (``contentSchema`` is checked too: the text is decoded and validated)."""
    if "$ref" in schema:
        ref = schema["$ref"]
        target = root if ref == "#" else root["$defs"][ref.removeprefix("#/$defs/")]
        return _problems(target, value, root)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_TYPES[name](value) for name in names):
            return [f"{value!r} is not of type {types}"]
    out: list[str] = []
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            out.append(f"{value!r} is too short")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{value!r} does not match {schema['pattern']}")
        if "contentSchema" in schema:
            out += _problems(schema["contentSchema"], json.loads(value), root)
    if isinstance(value, int) and value < schema.get("minimum", value):
        out.append(f"{value} is below the minimum")
    if isinstance(value, dict):
        out += [f"{name} is required" for name in schema.get("required", []) if name not in value]
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                out += [f"{name}: {p}" for p in _problems(properties[name], item, root)]
            elif schema.get("additionalProperties", True) is False:
                out.append(f"{name} is not allowed")
    return out


def _keywords(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for name, value in schema.items():
        if name in ("properties", "$defs"):
            found |= {k for sub in value.values() for k in _keywords(sub)}
        elif name == "contentSchema":
            found |= _keywords(value)
    return found


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded = json.loads(SCHEMA_PATH.read_text())
    assert isinstance(loaded, dict)
    assert _keywords(loaded) <= _KNOWN, "the test validator must know every keyword used"
    return loaded


def test_the_schema_is_packaged_and_shown_in_the_docs(schema: dict[str, Any]) -> None:
    from importlib import resources

    packaged = resources.files("zevents.redis") / "message.schema.json"
    assert json.loads(packaged.read_text("utf-8")) == schema
    assert json.loads(_doc_block("json")) == schema
    assert "redis/message.schema.json" in (ROOT / "pyproject.toml").read_text()


def test_the_validator_refuses_what_the_schema_refuses(schema: dict[str, Any]) -> None:
    assert _problems(schema, {"event": "e", "priority": 0}, schema) == []
    assert _problems(schema, {"payload": 1}, schema) == ["event is required"]
    assert _problems(schema, {"event": "e", "priority": "high"}, schema)
    assert _problems(schema, {"event": "e", "serial_group": ""}, schema)
    entry = schema["$defs"]["stream_entry"]
    assert _problems(entry, {"m": '{"event": "e"}', "a": "2"}, schema) == []
    assert _problems(entry, {"m": '{"event": 1}', "x": "?"}, schema) == [
        "m: event: 1 is not of type string",
        "x is not allowed",
    ]


def _stored(raw: redis.Redis, queue: RedisQueue) -> list[Any]:
    """Every body in the queue's msgs hash, and every stream entry's fields."""
    found: list[Any] = list(raw.hvals(queue.keys.key("msgs")))
    if queue.driver_name == "stream":
        for p in queue.priorities:
            found.extend(fields for _, fields in entries(raw, queue.keys.ready(p)))
    return found


def _bodies_zevents_writes(make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path) -> list[Any]:
    """What zevents writes on every driver: sends with every option, a stream retry,
    and messages archived and restored."""
    bodies: list[Any] = []
    store = JsonLinesArchive(tmp_path)
    for driver in DRIVERS:
        queue = make_queue(f"schema-{driver}", driver=driver, priorities=[0, 5])
        queue.send("a", {"n": 1})
        queue.send("b", [1, 2], priority=5, identifier="id-1", unique=True)
        queue.send_many([("c", None), {"event": "d", "payload": "x", "serial_group": "g"}])
        if driver != "set":
            queue.send("e", 1, delay=60)
        if driver == "stream":
            consumer = queue.consumer(lease=30.0)
            consumer.retry(consumer.take(1)[0], 0)
            consumer.take(1)  # the retry falls due: an entry with a and g
        bodies.extend(_stored(raw, queue))
        queue.archive("0s", force=True, store=store)
        queue.restore(store=store)
        bodies.extend(_stored(raw, queue))
    return bodies


def test_zevents_own_bodies_and_entries_validate(
    make_queue: MakeQueue, raw: redis.Redis, tmp_path: Path, schema: dict[str, Any]
) -> None:
    written = _bodies_zevents_writes(make_queue, raw, tmp_path)
    entry_schema = schema["$defs"]["stream_entry"]
    checked = {"entry": 0, "body": 0, "restored": 0}
    for item in written:
        if isinstance(item, dict):
            fields = {k.decode(): v.decode() for k, v in item.items()}
            assert _problems(entry_schema, fields, schema) == [], fields
            checked["entry"] += 1
        else:
            body = json.loads(item)
            assert _problems(schema, body, schema) == [], body
            checked["restored" if "original_id" in body else "body"] += 1
    assert all(checked.values()), checked
    assert any(b"a" in item and b"g" in item for item in written if isinstance(item, dict))
    try:
        jsonschema = importlib.import_module("jsonschema")
    except ImportError:
        return  # the subset validator above has checked them
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for item in written:
        if not isinstance(item, dict):
            assert list(validator.iter_errors(json.loads(item))) == []
