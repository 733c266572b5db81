"""Payload serializers: the ``Serializer`` protocol and the default ``JsonSerializer``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import orjson

from zevents.errors import ConfigError, EncodeError

__all__ = [
    "JSON_OPTIONS",
    "Decoder",
    "Encoder",
    "JsonSerializer",
    "Serializer",
    "codec_of",
    "resolve_serializer",
]

#: Encodes one payload into bytes.
Encoder = Callable[[Any], bytes]
#: Decodes bytes into one payload.
Decoder = Callable[[bytes], Any]


@runtime_checkable
class Serializer(Protocol):
    """Turns one payload into one frame and back.

    ``loads`` may raise any exception for data it rejects; the socket turns it into a
    ``zevents.DecodeError`` that keeps the raw frames.
    """

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj`` into bytes."""
        ...

    def loads(self, data: bytes) -> Any:
        """Decode bytes produced by ``dumps`` (or by a compatible peer)."""
        ...


#: The orjson options of every JSON zevents writes: dict keys that are not strings are
#: written as strings, as ``json.dumps`` does.
JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


class JsonSerializer:
    """JSON through orjson: compact, UTF-8, non-ASCII kept as is.

    Dict keys that are not strings (ints, enums, dates) are written as strings, as
    ``json.dumps`` does, instead of failing. Objects orjson does not know raise
    ``EncodeError``.

    Attributes:
        encoder: ``orjson.dumps`` without options: the same bytes as ``dumps`` for
            every payload it accepts, and faster; it raises for dicts with non-string
            keys, which ``dumps`` then handles (see ``codec_of``).
        decoder: ``orjson.loads``.
    """

    __slots__ = ()

    encoder: Encoder = staticmethod(orjson.dumps)
    decoder: Decoder = staticmethod(orjson.loads)

    def dumps(self, obj: Any) -> bytes:
        """Encode ``obj`` as JSON.

        Raises:
            EncodeError: ``obj`` holds something JSON cannot represent.
        """
        try:
            return orjson.dumps(obj, option=JSON_OPTIONS)
        except orjson.JSONEncodeError as exc:
            raise EncodeError(f"payload is not JSON-serializable: {exc}") from exc

    def loads(self, data: bytes) -> Any:
        """Decode JSON bytes (``orjson.JSONDecodeError`` on bad input)."""
        return orjson.loads(data)

    def __repr__(self) -> str:
        return "JsonSerializer()"


def codec_of(serializer: Serializer) -> tuple[Encoder, Decoder]:
    """The encoder and decoder a socket or queue binds once, for its hot path.

    A serializer may offer faster callables as ``encoder`` and ``decoder`` attributes
    (``JsonSerializer`` does). They must give the same result as ``dumps``/``loads``
    whenever they return, and may raise for input that ``dumps``/``loads`` handle: a
    caller retries a failure with ``dumps``/``loads``, which return the result or raise
    the proper error. Without them, ``dumps`` and ``loads`` themselves are returned.
    """
    encoder = getattr(serializer, "encoder", None)
    decoder = getattr(serializer, "decoder", None)
    return (
        encoder if callable(encoder) else serializer.dumps,
        decoder if callable(decoder) else serializer.loads,
    )


def resolve_serializer(spec: object) -> Serializer:
    """Turn a serializer option into a serializer instance.

    Args:
        spec: ``None`` (JSON), a ``Serializer`` instance, a class to instantiate, or a
            dotted path ``"package.module:Name"`` (or ``"package.module.Name"``).

    Returns:
        A serializer instance.

    Raises:
        ConfigError: The path cannot be imported or does not name a serializer.
    """
    if spec is None:
        return JsonSerializer()
    obj: object = spec
    if isinstance(spec, str):
        obj = import_object(spec, what="serializer")
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(f"serializer {spec!r} cannot be created: {exc}") from exc
    if not isinstance(obj, Serializer):
        raise ConfigError(f"serializer {spec!r} has no dumps(obj) and loads(data) methods")
    return obj


def import_object(path: str, *, what: str = "object") -> object:
    """Import ``"module:attr"`` or ``"module.attr"`` and return the attribute.

    Raises:
        ConfigError: With the path and the reason, when it cannot be imported.
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(f"{what} {path!r} is not of the form 'module:name'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"{what} {path!r}: cannot import {module_name!r}: {exc}") from exc
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{what} {path!r}: {module_name!r} has no {attr!r}") from None
    return obj
