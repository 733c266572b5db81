"""Serializers: JSON by orjson, and resolving a serializer option."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from zevents import ConfigError, EncodeError, JsonSerializer, Serializer
from zevents.serializers import import_object, resolve_serializer


class UpperSerializer:
    def dumps(self, obj: Any) -> bytes:
        return str(obj).upper().encode()

    def loads(self, data: bytes) -> Any:
        return data.decode().lower()


@pytest.mark.parametrize(
    "value",
    [None, 1, True, "string", [1, 2, 3], {"key": "value"}, "при/вет", {"nested": {"a": [1.5]}}],
)
def test_json_round_trip(value: Any) -> None:
    serializer = JsonSerializer()
    assert serializer.loads(serializer.dumps(value)) == value


def test_json_keeps_unicode_and_slashes_unescaped() -> None:
    assert JsonSerializer().dumps("при/вет") == '"при/вет"'.encode()


def test_json_writes_non_string_keys_as_strings() -> None:
    assert JsonSerializer().loads(JsonSerializer().dumps({1: "a", 2: "b"})) == {"1": "a", "2": "b"}


def test_json_encodes_datetimes_as_iso_strings() -> None:
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5)
    assert JsonSerializer().dumps(moment) == b'"2026-01-02T03:04:05"'


def test_json_rejects_unknown_objects_with_encode_error() -> None:
    with pytest.raises(EncodeError, match="not JSON-serializable"):
        JsonSerializer().dumps(object())


def test_json_rejects_bad_input_on_loads() -> None:
    with pytest.raises(ValueError, match=r"line 1 column \d+"):
        JsonSerializer().loads(b"{not json")


def test_resolve_default_is_json() -> None:
    assert isinstance(resolve_serializer(None), JsonSerializer)


def test_resolve_dotted_path_with_colon_and_dot() -> None:
    for path in (
        "tests.test_serializers:UpperSerializer",
        "tests.test_serializers.UpperSerializer",
    ):
        serializer = resolve_serializer(path)
        assert isinstance(serializer, UpperSerializer)
        assert isinstance(serializer, Serializer)


def test_resolve_instance_is_kept() -> None:
    instance = UpperSerializer()
    assert resolve_serializer(instance) is instance


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_zz:Thing", "cannot import 'no_such_module_zz'"),
        ("tests.test_serializers:Missing", "has no 'Missing'"),
        ("nodots", "not of the form"),
        ("tests.test_serializers:pytest", "no dumps"),
    ],
)
def test_resolve_bad_paths_raise_config_error(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_serializer(spec)


def test_import_object_follows_nested_attributes() -> None:
    assert import_object("os:path.join") is __import__("os").path.join


class FastPathSerializer:
    """Offers an encoder that refuses dicts, so the fallback to dumps can be seen."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def encoder(self, obj: Any) -> bytes:
        self.calls.append("encoder")
        if isinstance(obj, dict):
            raise TypeError("the fast path takes no dicts")
        return JsonSerializer().dumps(obj)

    def dumps(self, obj: Any) -> bytes:
        self.calls.append("dumps")
        return JsonSerializer().dumps(obj)

    def loads(self, data: bytes) -> Any:
        return JsonSerializer().loads(data)


def test_codec_of_prefers_a_serializers_own_encoder_and_decoder() -> None:
    from zevents.serializers import codec_of

    fast = FastPathSerializer()
    encoder, decoder = codec_of(fast)
    assert encoder(1) == b"1"
    assert fast.calls == ["encoder"]
    assert decoder(b"[1]") == [1]
    upper = UpperSerializer()
    assert codec_of(upper) == (upper.dumps, upper.loads)


def test_json_encoder_gives_the_bytes_of_dumps_and_dumps_handles_what_it_refuses() -> None:
    serializer = JsonSerializer()
    payload = {"id": 7, "name": "при/вет", "items": [1.5, None, True]}
    assert serializer.encoder(payload) == serializer.dumps(payload)
    with pytest.raises(TypeError):
        serializer.encoder({1: "a"})  # non-string keys: dumps' job
    assert serializer.dumps({1: "a"}) == b'{"1":"a"}'


def test_a_socket_falls_back_to_dumps_when_the_bound_encoder_refuses(
    context: Any, ipc_endpoint: str
) -> None:
    import zmq

    from zevents import EventSocket

    fast = FastPathSerializer()
    pull: EventSocket = context.socket(zmq.PULL, socket_class=EventSocket)
    push: EventSocket = context.socket(zmq.PUSH, socket_class=EventSocket)
    for sock in (pull, push):
        sock.linger = 0
        sock.rcvtimeo = 2000
        sock.serializer = fast
    pull.bind(ipc_endpoint)
    push.connect(ipc_endpoint)
    push.push("a", [1])
    push.push("b", {1: "x"})
    assert pull.pull() == ("a", [1])
    assert pull.pull() == ("b", {"1": "x"})
    assert fast.calls == ["encoder", "encoder", "dumps"]
