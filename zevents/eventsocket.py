"""``EventSocket``: a zmq socket that sends and receives named events.

A message is frame 0, the UTF-8 event name, then the serialized payload in frame 1. A
message with several payload frames (as the PHP package zeroevents sends, one JSON frame
per listener argument) decodes to the list of the decoded frames; one with no payload
frame decodes to ``None``.

Confirmed delivery adds a last frame, a token (4 marker bytes ``b"\\xffzv1"`` then 8
bytes), to the message. The receiver answers with ``[b"zevents.confirmed", token,
status]`` (the confirmation) once its receivers ran, where status is JSON ``{"ok": true}`` or
``{"ok": false, "error": "..."}``. The sender matches the token, so a late answer to an
earlier message is never taken for the current one. ``0xff`` never starts a UTF-8 or
JSON frame, so tokens cannot be mistaken for payloads.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any, NamedTuple

import orjson
import zmq

from zevents.confirmations import status_error
from zevents.errors import DecodeError, DeliveryTimeout, EncodeError, RemoteError
from zevents.events import CONFIRMED, ZEROEVENTS_CONFIRMED
from zevents.serializers import Decoder, Encoder, JsonSerializer, Serializer, codec_of

__all__ = ["TOKEN_MARKER", "EventSocket", "Received"]

#: First bytes of a confirmation token frame.
TOKEN_MARKER = b"\xffzv1"
_TOKEN_LENGTH = len(TOKEN_MARKER) + 8
_CONFIRMED_FRAME = CONFIRMED.encode()
_ZEROEVENTS_CONFIRMED = ZEROEVENTS_CONFIRMED.encode()
_CONFIRM_OK = b'{"ok":true}'
_SNDMORE = zmq.SNDMORE
_NOBLOCK = zmq.NOBLOCK

# The hot path calls the backend's send and recv directly: pyzmq's Python-level send
# wrapper (routing ids, groups) costs more than the send itself. Frames are received
# with copy=False only to read their "more" flag, which getsockopt(RCVMORE) (what
# recv_multipart uses) costs several times over.
_raw_send = zmq.backend.Socket.send
_raw_recv = zmq.backend.Socket.recv
_new_tuple = tuple.__new__
# Socket.poll builds a Poller on each call; zmq_poll on the one socket costs less.
_zmq_poll = zmq.zmq_poll
_POLLIN = zmq.POLLIN
_DEFAULT_SERIALIZER = JsonSerializer()
_DEFAULT_CODEC = codec_of(_DEFAULT_SERIALIZER)

# Event names are few and fired often: keep their encoded form.
_NAMES: dict[str, bytes] = {}
_NAMES_LIMIT = 4096
# Tokens only need to be unique per sending socket; a per-process random prefix keeps
# them apart across sockets and restarts as well.
_TOKEN_IDS = itertools.count(int.from_bytes(os.urandom(4), "big") << 32)


def _encode_name(event: str) -> bytes:
    name = _NAMES.get(event)
    if name is None:
        if not isinstance(event, str):
            raise TypeError(f"event name must be a str, not {type(event).__name__}")
        name = event.encode()
        if len(_NAMES) < _NAMES_LIMIT:
            _NAMES[event] = name
    return name


def _recv_frames(sock: zmq.Socket[bytes], flags: int) -> list[bytes]:
    """``recv_multipart(flags)``, reading each frame's more flag from the frame."""
    frame = _raw_recv(sock, flags, False)
    frames = [frame.bytes]
    while frame.more:
        frame = _raw_recv(sock, flags, False)
        frames.append(frame.bytes)
    return frames


def _names(frames: list[bytes], event: str) -> bool:
    """Whether a zeroevents confirmation's payload frames name ``event`` (its one
    argument; a list holding it is taken too)."""
    for frame in frames[:1]:
        try:
            named = orjson.loads(frame)
        except orjson.JSONDecodeError:
            return False
        return bool(named == event or named == [event])
    return False


def _dumps(serializer: Serializer, payload: Any, event: str) -> bytes:
    """``serializer.dumps(payload)``, any failure of it raised as ``EncodeError``."""
    try:
        return serializer.dumps(payload)
    except EncodeError:
        raise
    except Exception as exc:
        raise EncodeError(
            f"payload of {event!r} cannot be encoded by {serializer!r}: {exc}", event=event
        ) from exc


class Received(NamedTuple):
    """One event as received.

    Attributes:
        event: The event name.
        payload: The decoded payload.
        address: The sender's identity on a ROUTER socket, else ``None``.
        token: The confirmation token when the sender waits for one, else ``None``.
    """

    event: str
    payload: Any
    address: bytes | None = None
    token: bytes | None = None


class EventSocket(zmq.Socket[bytes]):
    """A ``zmq.Socket`` that speaks events.

    Create it from a context: ``ctx.socket(zmq.PUSH, socket_class=EventSocket)``. Every
    native method (``bind``, ``connect``, ``setsockopt``, ``poll``...) works as usual.

    Attributes:
        serializer: Encodes and decodes payloads (``JsonSerializer`` by default); its
            encoder and decoder are bound once, when it is set (see ``codec_of``).
        confirmed: ``push`` waits for the receiver's confirmation.
        confirm_timeout: Milliseconds ``push`` waits for a confirmation; ``None`` reads
            the socket's ``rcvtimeo`` (-1 waits forever).
        zeroevents: Confirmations in the PHP package zeroevents' form: ``push`` sends no
            token and takes the next ``zeroevents.confirmed`` naming its event;
            ``confirm`` answers a message that carried no token with one.
    """

    confirmed: bool = False
    zeroevents: bool = False
    confirm_timeout: int | None = None
    _is_router: bool = False
    _serializer: Serializer = _DEFAULT_SERIALIZER
    _encode: Encoder = _DEFAULT_CODEC[0]
    _decode: Decoder = _DEFAULT_CODEC[1]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._is_router = self.type == zmq.ROUTER

    @property
    def serializer(self) -> Serializer:
        """The payload serializer."""
        return self._serializer

    @serializer.setter
    def serializer(self, serializer: Serializer) -> None:
        self._serializer = serializer
        self._encode, self._decode = codec_of(serializer)

    # --- frames ---------------------------------------------------------------------

    def encode(self, event: str, payload: Any = None) -> list[bytes]:
        """Frames of one event: the name, then the serialized payload.

        Raises:
            EncodeError: The serializer cannot encode ``payload``.
        """
        return [_encode_name(event), _dumps(self.serializer, payload, event)]

    def decode(self, frames: list[bytes]) -> tuple[str, Any]:
        """The ``(event, payload)`` of frames made by ``encode`` (or by zeroevents).

        Raises:
            DecodeError: No frames, a name that is not UTF-8, or a payload the
                serializer rejects; the error keeps the frames.
        """
        if not frames:
            raise DecodeError("empty message: no event-name frame", frames=frames)
        try:
            event = bytes(frames[0]).decode()
        except UnicodeDecodeError as exc:
            raise DecodeError(f"event name is not UTF-8: {exc}", frames=frames) from exc
        if not event:
            raise DecodeError("empty event name", frames=frames)
        count = len(frames)
        try:
            if count == 2:
                return event, self.serializer.loads(frames[1])
            if count == 1:
                return event, None
            return event, [self.serializer.loads(frame) for frame in frames[1:]]
        except Exception as exc:
            raise DecodeError(
                f"payload of {event!r} cannot be decoded: {exc}", frames=frames, event=event
            ) from exc

    # --- sending --------------------------------------------------------------------

    def push(self, event: str, payload: Any = None, *, address: bytes | None = None) -> None:
        """Send one event.

        Args:
            event: The event name.
            payload: Anything the serializer encodes.
            address: The peer identity to route to (ROUTER sockets).

        Raises:
            EncodeError: The payload cannot be encoded (nothing was sent).
            zmq.Again: ``sndtimeo`` expired before the message could be queued.
            DeliveryTimeout: Confirmed: no confirmation within ``confirm_timeout``.
            RemoteError: Confirmed: the receiver's receivers raised.
        """
        name = _NAMES.get(event) or _encode_name(event)
        try:
            data = self._encode(payload)
        except Exception:
            # The bound encoder may refuse what dumps handles; dumps decides (or raises
            # EncodeError). Nothing was sent yet.
            data = _dumps(self._serializer, payload, event)
        if address is not None:
            _raw_send(self, address, _SNDMORE)
        if not self.confirmed or self.zeroevents:
            _raw_send(self, name, _SNDMORE)
            _raw_send(self, data)
            if self.confirmed:
                self.await_zeroevents_confirmation(event)
            return
        token = TOKEN_MARKER + next(_TOKEN_IDS).to_bytes(8, "big")
        _raw_send(self, name, _SNDMORE)
        _raw_send(self, data, _SNDMORE)
        _raw_send(self, token)
        self.await_confirmation(token, event)

    def await_zeroevents_confirmation(self, event: str) -> None:
        """Wait for a ``zeroevents.confirmed`` naming ``event`` (zeroevents' form has no
        token: a confirmation for another event is skipped, one for the same event cannot
        be told from a late one).

        Raises:
            DeliveryTimeout: None came within ``confirm_timeout``.
        """
        timeout = self.confirm_timeout
        if timeout is None:
            timeout = int(self.getsockopt(zmq.RCVTIMEO))
        deadline = None if timeout < 0 else time.monotonic() + timeout / 1000
        while True:
            wait = -1 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not _zmq_poll([(self, _POLLIN)], wait):
                raise DeliveryTimeout(
                    f"no zeroevents confirmation of {event!r} within {timeout} ms",
                    event=event,
                    sent=True,
                )
            frames = _recv_frames(self, _NOBLOCK)
            if self._is_router and frames:
                frames = frames[1:]
            if frames and frames[0] == _ZEROEVENTS_CONFIRMED and _names(frames[1:], event):
                return

    def push_token(self, event: str, payload: Any = None) -> bytes:
        """Send one event with a fresh confirmation token and return the token, without
        waiting for the confirmation (``read_confirmations`` collects it).

        Raises:
            EncodeError: The payload cannot be encoded (nothing was sent).
            zmq.Again: ``sndtimeo`` expired before the message could be queued.
        """
        name = _NAMES.get(event) or _encode_name(event)
        try:
            data = self._encode(payload)
        except Exception:
            data = _dumps(self._serializer, payload, event)
        token = TOKEN_MARKER + next(_TOKEN_IDS).to_bytes(8, "big")
        _raw_send(self, name, _SNDMORE)
        _raw_send(self, data, _SNDMORE)
        _raw_send(self, token)
        return token

    def read_confirmations(self, wait_ms: int) -> list[tuple[bytes, bytes]]:
        """Wait up to ``wait_ms`` (-1: forever) for a message, then take every message
        already here; return the ``(token, status)`` of the confirmations among them
        (anything else is skipped)."""
        found: list[tuple[bytes, bytes]] = []
        if not _zmq_poll([(self, _POLLIN)], wait_ms):
            return found
        while True:
            try:
                frames = _recv_frames(self, _NOBLOCK)
            except zmq.Again:
                return found
            if self._is_router and frames:
                frames = frames[1:]
            if len(frames) >= 2 and frames[0] == _CONFIRMED_FRAME:
                found.append((frames[1], frames[2] if len(frames) > 2 else _CONFIRM_OK))

    def await_confirmation(self, token: bytes, event: str = "") -> None:
        """Wait for the confirmation of the message that carried ``token``.

        Confirmations of other tokens (late answers to earlier messages) are skipped.

        Raises:
            DeliveryTimeout: None came within ``confirm_timeout``.
            RemoteError: The receiver reported that its receivers raised.
        """
        timeout = self.confirm_timeout
        if timeout is None:
            timeout = int(self.getsockopt(zmq.RCVTIMEO))
        deadline = None if timeout < 0 else time.monotonic() + timeout / 1000
        while True:
            if deadline is None:
                wait = -1
            else:
                wait = max(0, int((deadline - time.monotonic()) * 1000 + 0.999))
            if not _zmq_poll([(self, _POLLIN)], wait):
                raise DeliveryTimeout(
                    f"no confirmation of {event!r} within {timeout} ms", event=event, sent=True
                )
            frames = _recv_frames(self, _NOBLOCK)
            if self._is_router and frames:
                frames = frames[1:]
            if len(frames) >= 2 and frames[0] == _CONFIRMED_FRAME and frames[1] == token:
                status = frames[2] if len(frames) > 2 else _CONFIRM_OK
                if status == _CONFIRM_OK:
                    return
                raise RemoteError(status_error(status) or "remote error", event=event)
            # Anything else is a stale confirmation or a stray message: skip it.

    # --- receiving ------------------------------------------------------------------

    def receive(self, flags: int = 0) -> Received:
        """Receive one event with its routing details.

        A confirmed message is *not* confirmed here: call ``confirm`` once it was
        handled.

        Raises:
            zmq.Again: Nothing arrived within ``rcvtimeo`` (or at once with NOBLOCK).
            DecodeError: The frames are malformed; ``address`` and ``token`` are set on
                the error when known, so the sender can still be answered.
        """
        frames = _recv_frames(self, flags)
        address = None
        token = None
        if self._is_router:
            address = frames.pop(0)
        count = len(frames)
        if count >= 2:
            last = frames[-1]
            if len(last) == _TOKEN_LENGTH and last[:4] == TOKEN_MARKER:
                token = frames.pop()
                count -= 1
        try:
            if count == 2:
                # The common case, decoded inline; anything unusual goes through decode,
                # which raises DecodeError with the frames.
                try:
                    event = frames[0].decode()
                    payload = self._decode(frames[1])
                except Exception:
                    event = ""
                if not event:
                    event, payload = self.decode(frames)
            else:
                event, payload = self.decode(frames)
        except DecodeError as exc:
            exc.address = address
            exc.token = token
            raise
        return _new_tuple(Received, (event, payload, address, token))

    def pull(self) -> tuple[str, Any]:
        """Receive one event as ``(event, payload)``.

        A confirmed message is confirmed at once, on receipt.

        Raises:
            zmq.Again: Nothing arrived within ``rcvtimeo``.
            DecodeError: The frames are malformed.
        """
        received = self.receive()
        if received.token is not None:
            self.confirm(received)
        return received.event, received.payload

    def confirm(
        self, received: Received | DecodeError, error: BaseException | str | None = None
    ) -> None:
        """Confirm a message that carried a token (does nothing for one that did not).

        Args:
            received: What ``receive`` returned, or the ``DecodeError`` it raised.
            error: The failure to report to the sender, if its handling failed.

        Raises:
            zmq.ZMQError: The confirmation could not be sent (peer gone, timeout).
        """
        if received.token is None:
            if self.zeroevents and received.event not in (None, ZEROEVENTS_CONFIRMED):
                # zeroevents' form: the event name, JSON, one frame (its one argument).
                if received.address is not None:
                    _raw_send(self, received.address, _SNDMORE)
                _raw_send(self, _ZEROEVENTS_CONFIRMED, _SNDMORE)
                _raw_send(self, orjson.dumps(received.event))
            return
        if error is None:
            status = _CONFIRM_OK
        else:
            text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            status = orjson.dumps({"ok": False, "error": text})
        if received.address is not None:
            _raw_send(self, received.address, _SNDMORE)
        _raw_send(self, _CONFIRMED_FRAME, _SNDMORE)
        _raw_send(self, received.token, _SNDMORE)
        _raw_send(self, status)
