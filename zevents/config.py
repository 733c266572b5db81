"""Listener options, their defaults, and the config-file loader.

Only this module (and the CLI) reads environment variables and files.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import zmq

from zevents.configfile import CONFIG_ENV, find_table, load_connection
from zevents.curve import curve_options
from zevents.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "CONFIRMABLE_SOCKET_TYPES",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_IPC_MODE",
    "DEFAULT_LINGER",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_POLL_TIMEOUT",
    "DEFAULT_RCVTIMEO",
    "DEFAULT_SNDTIMEO",
    "DEFAULT_THREADS",
    "RECEIVING_SOCKET_TYPES",
    "SENDING_SOCKET_TYPES",
    "ZEROEVENTS",
    "ListenerOptions",
    "find_table",
    "load_connection",
    "validate_endpoint",
]

#: Milliseconds a closing socket may keep trying to send queued events.
DEFAULT_LINGER = 2000
#: Milliseconds a send may wait for a peer (or for room under the high-water mark).
DEFAULT_SNDTIMEO = 2000
#: Milliseconds a receive (or a confirmation) may wait.
DEFAULT_RCVTIMEO = 2000
#: I/O threads of a listener's own context.
DEFAULT_THREADS = 1
#: Seconds a service waits for an event before it fires ``zevents.service.idle``.
DEFAULT_POLL_TIMEOUT = 1.0
#: Seconds a stopping service keeps handling events its sockets already received.
DEFAULT_DRAIN_TIMEOUT = 1.0
#: Permissions of the ipc socket files a socket binds (owner only).
DEFAULT_IPC_MODE = 0o600
#: Largest message a socket takes, in bytes: a peer sending a larger one is cut off by
#: libzmq before it is buffered whole (``ZMQ_MAXMSGSIZE``; -1: no limit).
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024

#: Socket types a listener may send events on.
SENDING_SOCKET_TYPES = frozenset({"push", "pub", "dealer", "router", "pair"})
#: Socket types a service may receive events on.
RECEIVING_SOCKET_TYPES = frozenset({"pull", "sub", "router", "dealer", "pair"})
_SOCKET_TYPES = SENDING_SOCKET_TYPES | RECEIVING_SOCKET_TYPES
#: The value of ``confirmed`` that speaks the PHP package zeroevents' confirmations.
ZEROEVENTS = "zeroevents"
#: Socket types that can carry confirmations back to the sender.
CONFIRMABLE_SOCKET_TYPES = frozenset({"dealer", "router", "pair"})

_ENDPOINT = re.compile(r"^(tcp|ipc|inproc|ws|wss|pgm|epgm|vmci|tipc)://.+$")
# sun_path is 108 bytes including the terminating NUL.
_IPC_MAX_PATH = 107


def validate_endpoint(endpoint: str) -> str:
    """Check that ``endpoint`` looks like a ZeroMQ endpoint.

    Returns:
        The endpoint unchanged.

    Raises:
        ConfigError: It has no known transport, or its ipc path is too long.
    """
    if not isinstance(endpoint, str) or not _ENDPOINT.match(endpoint):
        raise ConfigError(
            f"endpoint {endpoint!r} is not a ZeroMQ endpoint; "
            "use tcp://HOST:PORT or ipc:///path/to/socket"
        )
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://") :]
        if not path.startswith("@") and len(path.encode()) > _IPC_MAX_PATH:
            raise ConfigError(
                f"ipc path of {endpoint!r} is {len(path.encode())} bytes; "
                f"the limit is {_IPC_MAX_PATH}: use a shorter path"
            )
    if endpoint.startswith("tcp://"):
        _, colon, port = endpoint[len("tcp://") :].rpartition(":")
        if not colon:
            raise ConfigError(f"endpoint {endpoint!r} has no port; use tcp://HOST:PORT")
        if port != "*" and not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ConfigError(
                f"endpoint {endpoint!r} has no valid port; use 1 to 65535, or * to bind "
                "any free port"
            )
    return endpoint


def socket_option(name: str | int) -> int:
    """The zmq option number of ``name`` (``"sndhwm"``, ``"SNDHWM"`` or a number).

    Raises:
        ConfigError: No zmq socket option has that name.
    """
    if isinstance(name, int) and not isinstance(name, bool):
        return name
    if isinstance(name, str):
        try:
            return int(zmq.SocketOption[name.upper()])
        except KeyError:
            pass
    raise ConfigError(f"unknown zmq socket option {name!r} (e.g. 'sndhwm', 'tcp_keepalive')")


def check_seconds(
    value: object, name: str, *, minimum: float = 0.001, option: str | None = None
) -> float:
    """A finite number of seconds of at least ``minimum``.

    Raises:
        ConfigError: Not a number, not finite, or below ``minimum`` (``option`` set).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} takes a number of seconds, not {value!r}", option=option)
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(
            f"{name} must be a finite number of seconds >= {minimum}, not {value}",
            option=option,
        )
    return float(value)


def _endpoints(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"option {name!r} takes an endpoint or a list of endpoints")
    return tuple(validate_endpoint(item) for item in items)


def _millis(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"option {name!r} takes whole milliseconds, not {value!r}")
    if value < -1:
        raise ConfigError(f"option {name!r} must be -1 (infinite) or more, not {value}")
    return value


def _socket_type(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value.lower() not in _SOCKET_TYPES:
        raise ConfigError(
            f"unknown socket_type {value!r}; use one of {', '.join(sorted(_SOCKET_TYPES))}"
        )
    return value.lower()


def _socket_options(value: object) -> dict[int, Any]:
    value = value or {}
    if not isinstance(value, Mapping):
        raise ConfigError("option 'socket_options' takes a mapping of zmq option to value")
    return {socket_option(name): option for name, option in value.items()}


def _prefixes(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise ConfigError("option 'subscribe' takes a prefix or a list of prefixes")


def _mode(value: object) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value, 8)  # "660": octal, as chmod reads it
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0o777:
        raise ConfigError(
            f"option 'ipc_mode' takes file permissions such as 0o600 or '660', not {value!r}",
            option="ipc_mode",
        )
    return value


def _size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < -1 or value == 0:
        raise ConfigError(
            f"option 'max_message_size' takes bytes (at least 1) or -1, not {value!r}",
            option="max_message_size",
        )
    return value


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"option {name!r} takes a whole number of 1 or more, not {value!r}", option=name
        )
    return value


def _confirmed(value: object) -> bool | str:
    if isinstance(value, bool):
        return value
    if value == ZEROEVENTS:
        return ZEROEVENTS
    raise ConfigError(
        f"option 'confirmed' takes true or false (or {ZEROEVENTS!r}), not {value!r}",
        option="confirmed",
    )


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"option {name!r} takes true or false, not {value!r}")
    return value


def _check_combination(kwargs: Mapping[str, Any]) -> None:
    socket_type = kwargs["socket_type"]
    if (
        kwargs["confirmed"]
        and socket_type is not None
        and socket_type not in CONFIRMABLE_SOCKET_TYPES
    ):
        raise ConfigError(
            f"confirmed delivery needs a socket that can answer (dealer, router or pair), "
            f"not {socket_type!r}"
        )
    if kwargs["window"] > 1 and kwargs["confirmed"] is not True:
        raise ConfigError(
            "option 'window' is for zevents' confirmed delivery (confirmed=true): "
            "zeroevents' confirmations carry no token, so one event is in flight at a time"
        )
    if kwargs["subscribe"] and socket_type not in (None, "sub"):
        raise ConfigError(f"option 'subscribe' is for SUB sockets, not {socket_type!r}")


@dataclass(frozen=True)
class ListenerOptions:
    """The options of an ``EventListener``, validated.

    Attributes:
        connect: Endpoints to connect to.
        bind: Endpoints to bind.
        socket_type: ``"push"``, ``"pub"``, ``"dealer"``, ``"pull"``, ``"sub"``, ``"router"``
            or ``"pair"``; ``None`` picks by role (push to send, pull to receive; dealer
            and router when confirmed).
        socket_options: zmq option number to value, applied before bind/connect (names
            such as ``"sndhwm"`` are resolved by ``build``).
        linger: Milliseconds a closing socket keeps sending queued events.
        sndtimeo: Milliseconds a send may wait.
        rcvtimeo: Milliseconds a receive, or a confirmation, may wait.
        subscribe: Prefixes a SUB socket subscribes to (``""`` is everything).
        confirmed: Wait for (sender) or send (service) confirmations: ``True`` is
            zevents' own (a token matches each confirmation to its event);
            ``"zeroevents"`` the PHP package zeroevents' form (no token: one event in
            flight at a time; a service in that mode answers both forms).
        serializer: Serializer instance, class or dotted path; ``None`` is JSON.
        threads: I/O threads of the listener's own context.
        persistent: Share one process-wide context instead of owning one.
        immediate: Queue events only for peers whose connection is complete
            (``ZMQ_IMMEDIATE``): with no peer, a send fails after ``sndtimeo`` and
            ``zevents.push.error`` fires. False queues them (up to the high-water mark)
            until a peer appears, and loses them if the process exits first.
        window: Confirmed sender: how many events may be in flight, unconfirmed, at
            once (1: each send waits for its confirmation).
        ipc_mode: Permissions of the ipc socket files it binds (default owner only,
            ``0o600``; e.g. ``0o660`` for a group).
        max_message_size: Largest message taken, in bytes (-1: no limit); a peer that
            sends a larger one is disconnected by libzmq.
        curve_secret_key: CURVE: this side's secret key (Z85 bytes; given as Z85 text
            or a key file path).
        curve_public_key: CURVE: this side's public key (read from the secret key's file,
            or computed from the secret key).
        curve_server_key: CURVE client: the server's public key.
        curve_allow: CURVE server: a directory of the public keys (``zmq.auth``
            certificates) of the clients let in; checked by a ZAP authenticator in this
            process, which logs every refusal with the peer's address.
    """

    connect: tuple[str, ...] = ()
    bind: tuple[str, ...] = ()
    socket_type: str | None = None
    socket_options: Mapping[int, Any] = field(default_factory=dict)
    linger: int = DEFAULT_LINGER
    sndtimeo: int = DEFAULT_SNDTIMEO
    rcvtimeo: int = DEFAULT_RCVTIMEO
    subscribe: tuple[str, ...] = ()
    confirmed: bool | str = False
    serializer: object = None
    threads: int = DEFAULT_THREADS
    persistent: bool = False
    immediate: bool = True
    window: int = 1
    ipc_mode: int = DEFAULT_IPC_MODE
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    curve_secret_key: bytes | None = None
    curve_public_key: bytes | None = None
    curve_server_key: bytes | None = None
    curve_allow: str | None = None

    @classmethod
    def build(cls, options: Mapping[str, Any] | None = None, **overrides: Any) -> ListenerOptions:
        """Validate a mapping of options, keyword overrides winning.

        Raises:
            ConfigError: An unknown option, or a value of the wrong kind.
        """
        merged: dict[str, Any] = dict(options or {})
        merged.update(overrides)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigError(
                f"unknown listener option(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {
            "connect": _endpoints(merged.get("connect"), "connect"),
            "bind": _endpoints(merged.get("bind"), "bind"),
            "socket_type": _socket_type(merged.get("socket_type")),
            "socket_options": _socket_options(merged.get("socket_options")),
            "subscribe": _prefixes(merged.get("subscribe")),
            "threads": _count(merged.get("threads", DEFAULT_THREADS), "threads"),
            "window": _count(merged.get("window", 1), "window"),
            "ipc_mode": _mode(merged.get("ipc_mode", DEFAULT_IPC_MODE)),
            "max_message_size": _size(merged.get("max_message_size", DEFAULT_MAX_MESSAGE_SIZE)),
            **curve_options(merged),
            "serializer": merged.get("serializer"),
        }
        for name in ("linger", "sndtimeo", "rcvtimeo"):
            kwargs[name] = _millis(merged.get(name, getattr(cls, name)), name)
        for name in ("persistent", "immediate"):
            kwargs[name] = _flag(merged.get(name, getattr(cls, name)), name)
        kwargs["confirmed"] = _confirmed(merged.get("confirmed", False))
        _check_combination(kwargs)
        return cls(**kwargs)

    @property
    def endpoints(self) -> str:
        """The bind and connect endpoints, for messages."""
        return ", ".join(self.bind + self.connect) or "(no endpoint)"

    def sending_type(self) -> str:
        """The socket type used to send events."""
        if self.socket_type is not None:
            return self.socket_type
        return "dealer" if self.confirmed else "push"

    def receiving_type(self) -> str:
        """The socket type used by a service to receive events."""
        if self.socket_type is not None:
            return self.socket_type
        if self.confirmed:
            return "router" if self.bind else "dealer"
        return "pull"
