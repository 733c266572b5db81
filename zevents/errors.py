"""Every error zevents raises to its users.

The tree::

    ZeventsError
    ├── ConfigError(ZeventsError, ValueError)      bad options, unknown connection, bad endpoint
    ├── EncodeError(ZeventsError, ValueError)      a payload the serializer cannot encode
    ├── DecodeError(ZeventsError, ValueError)      malformed frames; keeps the raw frames
    ├── EndpointError(ZeventsError, OSError)       a socket could not bind or connect
    ├── DeliveryError(ZeventsError)                an event was not delivered or not handled
    │   ├── DeliveryTimeout(DeliveryError, TimeoutError)   not sent (``sent`` False) or not
    │   │                                          confirmed (``sent`` True) in time
    │   └── RemoteError(DeliveryError)             delivered; the remote receivers raised
    ├── ServiceError(ZeventsError, RuntimeError)   a service used wrongly (no listener, running)
    ├── ReceiverError(ZeventsError, TypeError)     a receiver that is not callable
    ├── QueueError(ZeventsError)                   Redis queue failures (``zevents.redis``)
    │   ├── QueueUnavailable(QueueError, ConnectionError)  Redis cannot be reached
    │   │   └── ReplicationError(QueueUnavailable)  written to the master, too few replicas
    │   │                                          acknowledged it (``min_replicas``)
    │   └── QueueNotFound(QueueError, LookupError)  no queue of that name was ever used
    └── MissingExtraError(ZeventsError, ImportError)       an optional extra is not installed
        └── EmbeddedRedisMissing(MissingExtraError)        no Redis URL, and no embedded Redis

Raised by receivers to steer a Redis worker (``zevents.redis``); not failures of zevents:

    PermanentError(ZeventsError)     send the message to the failed store at once
    WaitingError(ZeventsError)       put the message back, due later, without counting an attempt
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "DecodeError",
    "DeliveryError",
    "DeliveryTimeout",
    "EmbeddedRedisMissing",
    "EncodeError",
    "EndpointError",
    "MissingExtraError",
    "PermanentError",
    "QueueError",
    "QueueNotFound",
    "QueueUnavailable",
    "ReceiverError",
    "RemoteError",
    "ReplicationError",
    "ServiceError",
    "WaitingError",
    "ZeventsError",
]


class ZeventsError(Exception):
    """Base class of every error zevents raises."""


class ConfigError(ZeventsError, ValueError):
    """Options, a config file or an endpoint are wrong.

    Args:
        message: What is wrong and how to put it right.
        option: The name of the parameter at fault, where one is (``"serve"``,
            ``"max_attempts"``), so a front end can name it in its own words.
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class EncodeError(ZeventsError, ValueError):
    """A payload could not be serialized.

    Args:
        message: What went wrong.
        event: The event whose payload failed.
    """

    def __init__(self, message: str, *, event: str | None = None) -> None:
        super().__init__(message)
        self.event = event


class DecodeError(ZeventsError, ValueError):
    """Incoming frames do not form a valid event.

    Args:
        message: What is wrong with the frames.
        frames: The raw frames as received (identity frame removed on ROUTER).
        event: The event name, when frame 0 could be read.
        address: The ROUTER identity of the sender, if any.
        token: The confirmation token of the message, if it carried one.
    """

    def __init__(
        self,
        message: str,
        *,
        frames: Sequence[bytes] = (),
        event: str | None = None,
        address: bytes | None = None,
        token: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.frames = list(frames)
        self.event = event
        self.address = address
        self.token = token


class EndpointError(ZeventsError, OSError):
    """A socket could not bind or connect an endpoint (in use, permission, no such host)."""


class DeliveryError(ZeventsError):
    """An event was not delivered, or its remote handlers failed.

    Args:
        message: What went wrong.
        event: The event that was being sent.
        endpoint: The endpoint(s) of the sending socket.
        unconfirmed: ``flush()`` of a windowed listener: ``(event, token)`` of every
            event sent since the last flush that was not confirmed.
    """

    def __init__(
        self,
        message: str,
        *,
        event: str | None = None,
        endpoint: str | None = None,
        unconfirmed: list[tuple[str, bytes]] | None = None,
    ):
        super().__init__(message)
        self.event = event
        self.endpoint = endpoint
        self.unconfirmed = unconfirmed or []


class DeliveryTimeout(DeliveryError, TimeoutError):
    """The event was not sent, or not confirmed, within its timeout.

    Args:
        message: What went wrong.
        event: The event that was being sent.
        endpoint: The endpoint(s) of the sending socket.
        sent: False: no peer took the event within ``sndtimeo`` (none connected, or
            every peer's high-water mark reached); nothing was sent. True: it was sent,
            but no confirmation came within ``rcvtimeo``; the receiver may or may not
            have handled it.
    """

    def __init__(
        self,
        message: str,
        *,
        event: str | None = None,
        endpoint: str | None = None,
        sent: bool = False,
    ) -> None:
        super().__init__(message, event=event, endpoint=endpoint)
        self.sent = sent


class RemoteError(DeliveryError):
    """The event was delivered; the receiving service ran its receivers and one raised.

    Args:
        message: The remote error text.
        event: The event that was being sent.
        endpoint: The endpoint(s) of the sending socket.
    """


class ServiceError(ZeventsError, RuntimeError):
    """An ``EventService`` was used wrongly: run with no listener, or run twice at once."""


class ReceiverError(ZeventsError, TypeError):
    """Something that is not callable was given as a receiver."""


class QueueError(ZeventsError):
    """A Redis queue operation failed."""


class QueueUnavailable(QueueError, ConnectionError):
    """Redis could not be reached or did not answer in time."""


class ReplicationError(QueueUnavailable):
    """A write reached the master, but fewer replicas than asked acknowledged it in time.

    Redis replicates asynchronously: the write is on the master, and is lost if that
    master fails before a replica has it. Treat it as not confirmed (send again, or
    report it); sending again can store a second copy.

    Args:
        message: What was written, where, and how many replicas acknowledged it.
        acknowledged: How many replicas acknowledged the write.
        wanted: How many were asked for (``min_replicas``).
    """

    def __init__(self, message: str, *, acknowledged: int, wanted: int) -> None:
        super().__init__(message)
        self.acknowledged = acknowledged
        self.wanted = wanted


class QueueNotFound(QueueError, LookupError):
    """No queue of that name was ever used under that prefix (nothing to inspect).

    Args:
        message: What was looked for, and which queues exist.
        name: The queue name.
        known: The names of the queues that do exist under the prefix.
    """

    def __init__(self, message: str, *, name: str, known: list[str]) -> None:
        super().__init__(message)
        self.name = name
        self.known = known


class MissingExtraError(ZeventsError, ImportError):
    """An optional part of zevents was used without its extra installed."""


class EmbeddedRedisMissing(MissingExtraError):
    """No Redis URL was given, and the embedded Redis (``zevents[embedded]``) that would
    be the default is not installed."""


class PermanentError(ZeventsError):
    """Raised by a receiver: the message can never succeed; fail it now, without retries."""


class WaitingError(ZeventsError):
    """Raised by a receiver: not yet; put the message back without counting an attempt.

    Args:
        message: Why the message has to wait.
        delay: Seconds until it is due again; ``None`` takes the retry policy's backoff.
    """

    def __init__(self, message: str = "waiting", delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay
