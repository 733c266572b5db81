"""``EventSocket``: a zmq socket that sends and receives named events.

A message is frame 0, the UTF-8 event name, then the serialized payload in frame 1. A
message with several payload frames (as the PHP package zeroevents sends, one JSON frame
per listener argument) decodes to the list of the decoded frames; one with no payload
frame decodes to ``None``.

Confirmed delivery adds a last frame, a token (``zevents.confirmations``): the receiver
answers ``[b"zevents.confirmed", token, status]`` once its receivers ran, and the sender
matches the token, so a late answer to an earlier message is never taken for the
current one. ``0xff`` starts a token, never a UTF-8 or JSON frame.

``EventSocketBase`` holds what never has to wait; ``EventSocket`` adds blocking waits,
``zevents.aio.AsyncEventSocket`` the same waits as coroutines.
"""

from __future__ import annotations

from typing import Any

import zmq

from zevents._frames import NAMES, Received, decode_frames, dumps_payload, encode_name
from zevents.confirmations import (
    CONFIRM_OK,
    CONFIRMED_FRAME,
    TOKEN_LENGTH,
    TOKEN_MARKER,
    Answer,
    Deadline,
    answer_frames,
    answers_frames,
    confirmation_frames,
    confirmation_in,
    is_zeroevents_confirmation,
    new_token,
    raise_for_status,
    split_tokens,
)
from zevents.errors import DecodeError
from zevents.serializers import Decoder, Encoder, JsonSerializer, Serializer, codec_of

__all__ = ["TOKEN_MARKER", "Answer", "EventSocket", "EventSocketBase", "Received"]

# Plain ints: ``flags | zmq.SNDMORE`` on the IntFlag members runs enum's Python __or__.
_SNDMORE = int(zmq.SNDMORE)
_NOBLOCK = int(zmq.NOBLOCK)

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


def _recv_frames(sock: zmq.Socket[Any], flags: int) -> list[bytes]:
    """``recv_multipart(flags)``, reading each frame's more flag from the frame."""
    frame = _raw_recv(sock, flags, False)
    frames = [frame.bytes]
    while frame.more:
        frame = _raw_recv(sock, flags, False)
        frames.append(frame.bytes)
    return frames


class EventSocketBase(zmq.Socket[Any]):
    """What the sync and asyncio event sockets share: frames, and I/O that never waits
    (unless given flags 0 on a sync socket).

    Attributes:
        serializer: Encodes and decodes payloads (``JsonSerializer`` by default); its
            encoder and decoder are bound once, when it is set (see ``codec_of``).
        confirmed: ``push`` waits for the receiver's confirmation.
        confirm_timeout: Milliseconds ``push`` waits for a confirmation; ``None`` reads
            the socket's ``rcvtimeo`` (-1 waits forever).
        send_timeout: Milliseconds the asyncio socket waits for room to send.
        zmq_timeouts: Whether libzmq applies ``sndtimeo`` and ``rcvtimeo`` (False for
            the asyncio socket, whose coroutines apply them).
        zeroevents: Confirmations in the PHP package zeroevents' form: ``push`` sends no
            token and takes the next ``zeroevents.confirmed`` naming its event;
            ``confirm`` answers a message that carried no token with one.
    """

    confirmed: bool = False
    zeroevents: bool = False
    confirm_timeout: int | None = None
    send_timeout: int = -1
    zmq_timeouts: bool = True
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
        return [encode_name(event), dumps_payload(self._serializer, payload, event)]

    def decode(self, frames: list[bytes]) -> tuple[str, Any]:
        """The ``(event, payload)`` of frames made by ``encode`` (or by zeroevents).

        Raises:
            DecodeError: No frames, a name that is not UTF-8, or a payload the
                serializer rejects; the error keeps the frames.
        """
        return decode_frames(self._serializer, frames)

    # --- sending --------------------------------------------------------------------

    def send_event(
        self,
        event: str,
        payload: Any,
        flags: int,
        address: bytes | None,
        token: bytes | None,
    ) -> None:
        """Put one event on the socket: all its frames in one step, or none.

        Args:
            event: The event name.
            payload: Anything the serializer encodes.
            flags: 0 waits up to ``sndtimeo`` for room; ``zmq.NOBLOCK`` does not wait.
            address: The peer identity to route to (ROUTER sockets), or None.
            token: A confirmation token to end the message with, or None.

        Raises:
            EncodeError: The payload cannot be encoded (nothing was sent).
            zmq.Again: No room (nothing was sent): libzmq takes the rest of a message
                whose first frame it took.
        """
        name = NAMES.get(event) or encode_name(event)
        try:
            data = self._encode(payload)
        except Exception:
            # The bound encoder may refuse what dumps handles; dumps decides (or raises
            # EncodeError). Nothing was sent yet.
            data = dumps_payload(self._serializer, payload, event)
        if address is not None:
            _raw_send(self, address, flags | _SNDMORE)
        _raw_send(self, name, flags | _SNDMORE)
        if token is None:
            _raw_send(self, data, flags)
        else:
            _raw_send(self, data, flags | _SNDMORE)
            _raw_send(self, token, flags)

    def send_frames(self, frames: list[bytes], flags: int = 0) -> None:
        """Send ``frames`` as one message (raises ``zmq.Again`` as ``send_event``)."""
        more = flags | _SNDMORE
        for frame in frames[:-1]:
            _raw_send(self, frame, more)
        _raw_send(self, frames[-1], flags)

    def confirmations_of(self, answers: list[Answer]) -> list[tuple[list[bytes], str, int]]:
        """The messages that confirm ``answers``, each with the first event it confirms
        and how many (see ``confirmations.answers_frames``)."""
        return answers_frames(answers, self.zeroevents)

    def confirmation_of(
        self, received: Received | DecodeError, error: BaseException | str | None = None
    ) -> list[bytes] | None:
        """The frames (routed, on ROUTER) that confirm ``received``, or None when it
        needs no answer (see ``confirmations.answer_frames``)."""
        return answer_frames(received, error, self.zeroevents)

    # --- receiving ------------------------------------------------------------------

    def receive(self, flags: int = 0) -> Received:
        """Receive one event with its routing details.

        A confirmed message is *not* confirmed here: call ``confirm`` once it was
        handled. On an asyncio socket pass ``zmq.NOBLOCK``.

        Raises:
            zmq.Again: Nothing arrived within ``rcvtimeo`` (or at once with NOBLOCK).
            DecodeError: The frames are malformed; ``address`` and ``token`` are set on
                the error when known, so the sender can still be answered.
        """
        # A ROUTER's first frame, the peer's routing id, always has more after it:
        # received as bytes, without a frame object.
        address: bytes | None = _raw_recv(self, flags, True) if self._is_router else None
        frames = _recv_frames(self, flags)
        token = None
        count = len(frames)
        if count >= 2:
            last = frames[-1]
            if len(last) == TOKEN_LENGTH and last[:4] == TOKEN_MARKER:
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

    def _take_reply(self) -> list[bytes] | None:
        """The next message already here, without a ROUTER's address; None if none."""
        try:
            if self._is_router:
                _raw_recv(self, _NOBLOCK, True)  # the routing id (see receive)
            return _recv_frames(self, _NOBLOCK)
        except zmq.Again:
            return None

    def take_confirmations(self) -> list[tuple[bytes, bytes]]:
        """Take every message already here; the ``(tokens, status)`` of the
        confirmations among them (``tokens``: one token or several end to end, see
        ``split_tokens``; anything else is skipped)."""
        found = []
        while (frames := self._take_reply()) is not None:
            if (confirmation := confirmation_in(frames)) is not None:
                found.append(confirmation)
        return found

    def take_confirmation(self, token: bytes) -> bytes | None:
        """Take messages already here until the confirmation of ``token``; its status, or
        None if it has not come (confirmations of other tokens, late answers to earlier
        messages, and stray messages are skipped)."""
        while (frames := self._take_reply()) is not None:
            if len(frames) >= 2 and frames[0] == CONFIRMED_FRAME:
                tokens = frames[1]
                if tokens == token or (
                    len(tokens) > TOKEN_LENGTH and token in split_tokens(tokens)
                ):
                    return frames[2] if len(frames) > 2 else CONFIRM_OK
        return None

    def take_zeroevents_confirmation(self, event: str) -> bool:
        """Take messages already here until a ``zeroevents.confirmed`` naming ``event``
        (zeroevents' form has no token: a confirmation for another event is skipped, one
        for the same event cannot be told from a late one); whether one came."""
        while (frames := self._take_reply()) is not None:
            if is_zeroevents_confirmation(frames, event):
                return True
        return False

    def confirm_deadline(self) -> Deadline:
        """When a confirmation awaited from now on is late (``confirm_timeout``, or the
        socket's ``rcvtimeo``)."""
        timeout = self.confirm_timeout
        if timeout is None:
            timeout = int(self.getsockopt(zmq.RCVTIMEO))
        return Deadline(timeout)


class EventSocket(EventSocketBase):
    """A ``zmq.Socket`` that speaks events; its waits block.

    Create it from a context: ``ctx.socket(zmq.PUSH, socket_class=EventSocket)``. Every
    native method (``bind``, ``connect``, ``setsockopt``, ``poll``...) works as usual.
    The attributes are those of ``EventSocketBase``.
    """

    def push(self, event: str, payload: Any = None, *, address: bytes | None = None) -> None:
        """Send one event; with ``confirmed``, wait for its confirmation.

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
        if not self.confirmed:
            self.send_event(event, payload, 0, address, None)
        elif self.zeroevents:
            self.send_event(event, payload, 0, address, None)
            self.await_zeroevents_confirmation(event)
        else:
            token = new_token()
            self.send_event(event, payload, 0, address, token)
            self.await_confirmation(token, event)

    def await_zeroevents_confirmation(self, event: str) -> None:
        """Wait for a ``zeroevents.confirmed`` naming ``event`` (see
        ``take_zeroevents_confirmation``).

        Raises:
            DeliveryTimeout: None came within ``confirm_timeout``.
        """
        deadline = self.confirm_deadline()
        while _zmq_poll([(self, _POLLIN)], deadline.left_ms()):
            if self.take_zeroevents_confirmation(event):
                return
        raise deadline.missed(event, self.zeroevents)

    def push_token(self, event: str, payload: Any = None) -> bytes:
        """Send one event with a fresh confirmation token and return the token, without
        waiting for the confirmation (``read_confirmations`` collects it).

        Raises:
            EncodeError: The payload cannot be encoded (nothing was sent).
            zmq.Again: ``sndtimeo`` expired before the message could be queued.
        """
        token = new_token()
        self.send_event(event, payload, 0, None, token)
        return token

    def read_confirmations(self, wait_ms: int) -> list[tuple[bytes, bytes]]:
        """Wait up to ``wait_ms`` (-1: forever) for a message, then take every message
        already here; return the ``(tokens, status)`` of the confirmations among them
        (see ``take_confirmations``)."""
        if not _zmq_poll([(self, _POLLIN)], wait_ms):
            return []
        return self.take_confirmations()

    def await_confirmation(self, token: bytes, event: str = "") -> None:
        """Wait for the confirmation of the message that carried ``token``.

        Confirmations of other tokens (late answers to earlier messages) are skipped.

        Raises:
            DeliveryTimeout: None came within ``confirm_timeout``.
            RemoteError: The receiver reported that its receivers raised.
        """
        deadline = self.confirm_deadline()
        wait = deadline.timeout_ms  # the first wait is all of it: no clock read
        while _zmq_poll([(self, _POLLIN)], wait):
            status = self.take_confirmation(token)
            if status is not None:
                if status != CONFIRM_OK:
                    raise_for_status(status, event)
                return
            wait = deadline.left_ms()
        raise deadline.missed(event, self.zeroevents)

    def pull(self) -> tuple[str, Any]:
        """Receive one event as ``(event, payload)``; a confirmed one is confirmed at once.

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
        """Confirm a message that carried a token (does nothing for one that did not,
        unless in zeroevents' form).

        Args:
            received: What ``receive`` returned, or the ``DecodeError`` it raised.
            error: The failure to report to the sender, if its handling failed.

        Raises:
            zmq.ZMQError: The confirmation could not be sent (peer gone, timeout).
        """
        token = received.token
        if token is not None:  # the common case: one call less
            frames: list[bytes] | None = confirmation_frames(token, error, received.address)
        else:
            frames = self.confirmation_of(received, error)
        if frames is not None:
            self.send_frames(frames)
