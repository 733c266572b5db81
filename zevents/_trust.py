"""Who may connect to a socket, and what it takes (private): message size limit, CURVE
keys and their ZAP authenticator, ipc file permissions, and a log of the connections
libzmq refused.

Applied by ``zevents._sockets.open_socket`` to every socket it opens.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket as pysocket
import struct
import threading
import weakref
from typing import TYPE_CHECKING, Any

import zmq

from zevents.config import ListenerOptions
from zevents.errors import ConfigError

if TYPE_CHECKING:
    from zevents._auth import CurveAuthenticator

logger = logging.getLogger("zevents.connections")

__all__ = [
    "ConnectionLog",
    "apply_curve",
    "authenticator_for",
    "curve_role",
    "parse_event",
    "restrict_ipc_files",
    "stop_authenticator",
]

#: Context -> its ZAP authenticator (one per context: libzmq asks whoever binds
#: inproc://zeromq.zap.01 first).
_authenticators: weakref.WeakKeyDictionary[zmq.Context[Any], CurveAuthenticator] = (
    weakref.WeakKeyDictionary()
)
_authenticators_lock = threading.Lock()


def curve_role(options: ListenerOptions) -> str | None:
    """``"client"`` (a server key given), ``"server"`` (an own secret key only), or
    None (no CURVE)."""
    if options.curve_server_key is not None:
        return "client"
    if options.curve_secret_key is not None:
        return "server"
    return None


def apply_curve(sock: zmq.Socket[Any], options: ListenerOptions) -> str | None:
    """Set the CURVE options of ``sock`` (before it binds or connects); its role."""
    role = curve_role(options)
    secret, public = options.curve_secret_key, options.curve_public_key
    if role is None or secret is None or public is None:
        return None  # curve_options() gives both keys whenever there is a role
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    if options.curve_server_key is not None:
        sock.setsockopt(zmq.CURVE_SERVERKEY, options.curve_server_key)
    else:
        sock.setsockopt(zmq.CURVE_SERVER, 1)
    return role


def authenticator_for(context: zmq.Context[Any], allow: str) -> CurveAuthenticator:
    """The running authenticator of ``context`` letting in the keys of ``allow``, started
    now if the context has none.

    Raises:
        ConfigError: The context's authenticator allows another directory (sockets of
            one context share it: give such servers their own context).
    """
    with _authenticators_lock:
        running = _authenticators.get(context)
        if running is not None and running.is_alive():
            if os.path.realpath(running.keys_dir) != os.path.realpath(os.path.expanduser(allow)):
                raise ConfigError(
                    f"option 'curve_allow': this context already lets in the keys of "
                    f"{running.keys_dir}; a server allowing {allow} needs its own context "
                    "(persistent=False)",
                    option="curve_allow",
                )
            return running
        from zevents._auth import CurveAuthenticator  # only CURVE servers need it

        authenticator = CurveAuthenticator(context, allow)
        authenticator.start()
        _authenticators[context] = authenticator
        return authenticator


def stop_authenticator(context: zmq.Context[Any]) -> None:
    """Stop the authenticator of ``context``, if it has one (before it is destroyed)."""
    with _authenticators_lock:
        authenticator = _authenticators.pop(context, None)
    if authenticator is not None:
        authenticator.stop()


def restrict_ipc_files(bound: list[str], mode: int) -> None:
    """Give the socket files of the bound ipc endpoints the permissions ``mode``.

    Raises:
        OSError: A file's permissions cannot be changed.
    """
    for endpoint in bound:
        path = endpoint[len("ipc://") :]
        if endpoint.startswith("ipc://") and not path.startswith("@"):
            os.chmod(path, mode)


#: The monitor events ``ConnectionLog`` reads.
_REFUSALS = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_WATCHED = (
    _REFUSALS
    | zmq.EVENT_ACCEPTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_MONITOR_STOPPED
)
#: What a connection closed before its handshake finished, with no reason given, was.
_UNFINISHED = (
    "its handshake did not finish: a socket type that cannot talk to this one (e.g. a "
    "DEALER sending to a PULL), or not a ZeroMQ peer"
)

#: ZMTP protocol error codes -> what they mean to a user.
_PROTOCOL_ERRORS = {
    getattr(zmq, "PROTOCOL_ERROR_ZMTP_INVALID_METADATA", 0x10000016): (
        "its socket type cannot talk to this one (e.g. a DEALER sending to a PULL)"
    ),
    getattr(zmq, "PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH", 0x11000002): (
        "its security mechanism differs (CURVE on one side only?)"
    ),
}


def parse_event(frames: list[bytes]) -> tuple[int, int, str]:
    """A monitor message: its event, its value and its endpoint (libzmq's format: 16
    bits of event and 32 of value, then the endpoint)."""
    event, value = struct.unpack("=Hi", frames[0][:6])
    return event, value, frames[1].decode("utf-8", "replace")


def describe(event: int, value: int) -> str:
    """Why a connection was refused, from a monitor event and its value."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return f"its key is not allowed (ZAP status {value})"
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        return _PROTOCOL_ERRORS.get(value, f"ZMTP protocol error {value:#x}")
    detail = f" ({os.strerror(value)})" if value else ""
    return _UNFINISHED + detail


#: A peer whose connection closed before its address could be read.
GONE = "a peer gone already"


def _tcp(host: str, port: int | None = None) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"tcp://{host}" if port is None else f"tcp://{host}:{port}"


def peer_of(fd: int) -> str:
    """The address of the peer connected on ``fd`` (a socket libzmq accepted)."""
    try:
        sock = pysocket.socket(fileno=fd)
    except OSError:
        return GONE
    try:
        address = sock.getpeername()
    except OSError:
        return GONE
    finally:
        sock.detach()  # libzmq owns the descriptor
    if isinstance(address, tuple):
        return _tcp(address[0], address[1])
    return "an ipc peer" if isinstance(address, str) else "an unknown peer"


class ConnectionLog:
    """Logs, with the peer's address, each connection to ``sock`` that libzmq refused (a
    failed handshake: a socket type that cannot talk to this one, a security mechanism
    or key that does not match) at WARNING, and each closed tcp connection at INFO (ipc
    ones at DEBUG), from a thread reading the socket's monitor until ``close``.

    A peer's address is read when libzmq accepts its connection; a refusal is told when
    the refused connection closes (libzmq reports the two one after the other). A
    connection the key check refused that closed before its address was read is named
    by the host the authenticator saw (ZAP gives no port). libzmq
    names no connection in its "handshake succeeded" report: handshakes are taken to
    finish in the order their connections came, which holds unless several peers
    connect at the same moment. libzmq does not say why a connection closed: a peer
    that went away and a message over ``max_message_size`` (libzmq drops the
    connection) read the same.

    Args:
        sock: A socket not monitored yet (call before it binds or connects).
        name: The socket's endpoints, for the log lines.
        authenticator: The ZAP authenticator of the socket's context, for a CURVE server
            with ``curve_allow``.
    """

    def __init__(
        self, sock: zmq.Socket[Any], name: str, authenticator: CurveAuthenticator | None = None
    ) -> None:
        self.name = name
        self._authenticator = authenticator
        #: The host the authenticator refused last, until its connection closes.
        self._refused_host: str | None = None
        #: Connections refused so far.
        self.refused = 0
        self._peers: dict[int, str] = {}
        self._handshaking: list[int] = []
        self._refusal: str | None = None
        self._sock = sock
        address = f"inproc://zevents.monitor.{id(self)}.{os.getpid()}"
        sock.monitor(address, _WATCHED)
        self._monitor: zmq.Socket[bytes] = sock.context.socket(zmq.PAIR)
        self._monitor.setsockopt(zmq.LINGER, 0)
        self._monitor.connect(address)
        self._thread = threading.Thread(target=self._run, name="zevents-monitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop logging (before the socket closes); waits at most 1 s for the thread."""
        with contextlib.suppress(zmq.ZMQError):
            self._sock.disable_monitor()
        self._thread.join(1.0)
        if not self._thread.is_alive():
            self._monitor.close(linger=0)

    def _run(self) -> None:
        # Bounded waits: a monitor that never says "stopped" still ends with the socket.
        while True:
            try:
                if not self._monitor.poll(500):
                    if self._sock.closed:
                        return
                    continue
                event, value, _ = parse_event(self._monitor.recv_multipart())
            except zmq.ZMQError:
                return
            if event == zmq.EVENT_MONITOR_STOPPED:
                return
            self.note(event, value)

    def note(self, event: int, value: int) -> None:
        """Take one monitor event (``value``: its number, a descriptor or a code)."""
        if event == zmq.EVENT_ACCEPTED:
            self._peers[value] = peer_of(value)
            self._handshaking.append(value)
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            if self._handshaking:
                self._handshaking.pop(0)
        elif event & _REFUSALS:
            self._refusal = describe(event, value)
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH and self._authenticator is not None:
                with contextlib.suppress(IndexError):  # (refused by another socket's log)
                    self._refused_host = self._authenticator.refused.popleft()
        elif event == zmq.EVENT_DISCONNECTED:
            peer = self._peers.pop(value, "an unknown peer")
            refusal, self._refusal = self._refusal, None
            host, self._refused_host = self._refused_host, None
            if peer == GONE and host:
                peer = f"{_tcp(host)} (gone before its port was read)"
            if value in self._handshaking:
                self._handshaking.remove(value)
                refusal = refusal or _UNFINISHED
            if refusal is not None:
                self.refused += 1
                logger.warning("refused a connection on %s from %s: %s", self.name, peer, refusal)
            elif peer.startswith("tcp://"):
                logger.info(
                    "connection on %s from %s closed (by the peer, or by libzmq for a "
                    "message over max_message_size)",
                    self.name,
                    peer,
                )
            else:
                logger.debug("connection on %s from %s closed", self.name, peer)
